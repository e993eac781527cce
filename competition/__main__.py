"""``python -m competition`` runs the ``xrd-bravais`` command line."""

from competition.cli import app

app(prog_name="xrd-bravais")
