"""``python -m xrd_bravais`` runs the ``xrd-bravais`` command line."""

from xrd_bravais.cli import run

run()
