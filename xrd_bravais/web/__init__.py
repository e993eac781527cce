"""The competition website: ``xrd-bravais serve``.

Server-rendered pages for teams and organisers and a JSON API for scripts, on top
of :mod:`scoring` and its SQLite store (no second copy of any rule). See
:func:`xrd_bravais.web.app.create_app`.
"""
