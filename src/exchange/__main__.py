from exchange.cli import app

app(prog_name="python -m exchange")
