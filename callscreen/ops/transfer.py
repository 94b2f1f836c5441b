"""CSV (or JSON) download and upload of one list, for the portal: an administrator's.

The file formats and the rules are :mod:`callscreen.transfer`'s, the same the ``import`` and
``export`` commands use: an upload is parsed whole before anything is written (one bad row and
nothing is imported, every bad row reported with its line, in the CLI's words), then handed to
:func:`callscreen.ops.lists.import_rows`, the CLI's own write with its one audit row.

Import and export are an administrator's even for an extension its user manages: a file moves
many numbers at once, and an export holds every note. Permission is asked before the upload is
parsed (a user's file is never read) and before the first row of a download is read (a refusal
is a 403 page, not a broken download).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncGenerator, Sequence

from .. import transfer
from ..db.errors import InvalidInput
from ..db.store import ImportResult, ListedEntry, NewEntry, Store, check_ext
from ..numbers import DEFAULT_REGION
from ..policy import Kind, Scope
from . import lists
from .actor import Actor, permit_admin

#: Bad rows an error names at most (a 1 MiB upload can hold half a million one-digit rows);
#: the summary line always has the full count.
MAX_REPORTED = 1000


class BadFile(InvalidInput):
    """An upload that was not imported: ``summary`` (one line, the CLI's last) and ``rows``
    (the CLI's lines before it: every bad row with where it is, at most MAX_REPORTED)."""

    def __init__(self, summary: str, rows: Sequence[str] = ()) -> None:
        self.summary = summary
        self.rows = list(rows)
        super().__init__("\n".join([summary, *self.rows]))


def _permit(actor: Actor, scope: Scope, ext: str | None) -> None:
    """Validate the list named, then: an administrator's (the account's lists, or any
    extension's)."""
    if scope is Scope.EXTENSION:
        check_ext(ext or "")
    elif ext:
        raise InvalidInput("an account entry has no extension")
    permit_admin(actor)


async def export_entries(
    store: Store, actor: Actor, *, scope: Scope, ext: str | None, kind: Kind
) -> AsyncGenerator[ListedEntry, None]:
    """Every entry of one list in number order, streamed (what ``export`` writes): permission
    is decided here, before the generator is returned; close it (``aclosing``) when done."""
    _permit(actor, scope, ext)
    return store.iter_entries(scope, ext if scope is Scope.EXTENSION else None, kind)


def file_format(name: str) -> str:
    """As ``import`` decides without ``--format``: JSON for a ``.json`` name, else CSV."""
    return "json" if name.lower().endswith(".json") else "csv"


def parse(data: bytes, name: str, target: transfer.Target, region: str) -> list[NewEntry]:
    """Every row of the file, or :class:`BadFile` with the CLI's words (``name`` where the CLI
    says the path)."""
    try:
        lines = transfer.CountingLines(io.BytesIO(data))
        rows, bad = transfer.read_entries(lines, file_format(name), target, region)
    except transfer.FileError as exc:
        raise BadFile(f"{name}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise BadFile(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if bad:
        s = "" if len(bad) == 1 else "s"
        shown = [f"{name} {b}" for b in bad[:MAX_REPORTED]]
        if len(bad) > MAX_REPORTED:
            shown.append(f"... and {len(bad) - MAX_REPORTED:,} more")
        raise BadFile(f"{len(bad)} bad row{s} in {name}: nothing imported", shown)
    return rows


async def import_upload(
    store: Store,
    actor: Actor,
    data: bytes,
    *,
    name: str,
    scope: Scope,
    ext: str | None,
    kind: Kind,
    region: str = DEFAULT_REGION,
) -> tuple[int, ImportResult]:
    """Import an uploaded file into one list, all or nothing -> (rows in the file, result)."""
    _permit(actor, scope, ext)
    if not name and not data:  # the form sent without a file chosen
        raise BadFile("choose a file to import")
    ext = ext if scope is Scope.EXTENSION else None
    target = transfer.Target(scope, ext or "", kind)
    rows = await asyncio.to_thread(parse, data, name or "the file", target, region)
    result = await lists.import_rows(store, actor, rows, scope=scope, ext=ext, kind=kind)
    return len(rows), result
