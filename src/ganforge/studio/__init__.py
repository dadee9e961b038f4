"""``ganforge studio``: a local web app over the Python API (Generate, Latent explorer, Translate, Training
monitor, GAN Lab). Needs the ``studio`` extra: ``pip install 'ganforge[studio]'``.

    from ganforge.studio.app import create_app
    app = create_app(["runs/demo"], runs_root="runs")    # an ASGI app; ganforge studio serves it with uvicorn

Modules: ``app`` (the FastAPI routes), ``runs`` (which runs may be read, their status, training
processes), ``pictures`` (what the image pages draw, through ganforge.load and ganforge.latent),
``lab`` (GAN Lab's live toy run), ``static/`` (the page, its script and style, served from the package).
"""
