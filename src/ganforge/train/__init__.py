"""The training loop and what it needs: checkpoints, EMA, distributed set-up."""
