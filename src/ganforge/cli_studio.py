"""``ganforge studio``: serve the browser studio (a thin layer over :mod:`ganforge.studio`).

    ganforge studio [RUN_DIR ...] [--runs-root runs/] [--port 7860] [--host 127.0.0.1]
"""

from __future__ import annotations

import argparse
import sys

from .errors import GanforgeError
from .threads import add_threads_option, use_threads

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("studio", help="open the browser studio: generate, latent explorer, translate, "
                                             "training monitor, GAN Lab",
                              description="A local web app over the ganforge API. Only the runs given and those "
                                          "under --runs-root can be read.")
    p.add_argument("runs", nargs="*", metavar="RUN_DIR", help="run folders to open (besides those under --runs-root)")
    p.add_argument("--runs-root", default="runs", help="folder whose runs are listed and where new runs start "
                                                        "(default runs/)")
    p.add_argument("--port", type=int, default=7860, help="default 7860")
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)")
    p.add_argument("--device", default="cpu", help="device for generating: cpu | cuda | mps | auto (default cpu)")
    add_threads_option(p)  # the server's own work; training runs it starts choose theirs
    return p


def host_warning(host: str) -> str | None:
    """The warning printed for a host other than this machine's loopback address."""
    if host in LOCAL_HOSTS:
        return None
    return (f"ganforge: warning: serving on {host}: anyone who can reach this machine on the network can use the "
            "studio (generate, upload images, start and stop training runs). Use --host 127.0.0.1 to keep it local.")


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from .studio.app import create_app
    except ImportError as e:
        raise GanforgeError(f"The studio needs its extra packages ({e.name} is missing): "
                            "pip install 'ganforge[studio]'.") from None
    if not 0 < args.port < 65536:
        raise GanforgeError(f"--port must be between 1 and 65535, got {args.port}.")
    app = create_app(args.runs, args.runs_root, device=args.device)
    warning = host_warning(args.host)
    if warning:
        print(warning, file=sys.stderr)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"ganforge studio: http://{shown}:{args.port}/  (Ctrl-C to quit)", file=sys.stderr)
    # open event streams (the monitor) would hold a Ctrl-C for ever; training processes it started are then
    # stopped with a checkpoint by the app's shutdown
    with use_threads(args.threads):  # requests keep this choice (the policy's rule for work inside an entry point)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=3)
    return 0
