"""``python -m xrd_bravais`` runs the ``xrd-bravais`` command line."""

from xrd_bravais.cli import app

app(prog_name="xrd-bravais")
