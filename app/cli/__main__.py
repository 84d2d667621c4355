"""`python -m app.cli`: the same `finetune` command where the console script is not installed."""

from app.cli.main import app

app(prog_name="finetune")
