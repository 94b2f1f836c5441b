"""The ``callscreen`` command: thin click commands over the library.

One module per area; importing them registers their commands on :data:`cli`.
``callscreen.cli:main`` is the console entry point.
"""

from . import (  # noqa: F401  (register)
    accounts,
    audit,
    database,
    doctor,
    install,
    lists,
    reports,
    serve,
    settings,
    transfer,
    users,
    web,
)
from .base import cli, main

__all__ = ["cli", "main"]
