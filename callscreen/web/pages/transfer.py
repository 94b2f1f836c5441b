"""CSV download and upload of a list on the Blocking page (an administrator's).

``GET {base}/{kind}.csv`` streams exactly what ``callscreen export --ext EXT --list KIND``
writes (the same :class:`callscreen.transfer.CsvWriter`, cells made inert), in chunks: a list
of a million entries never sits in memory. ``POST {base}/{kind}/import`` parses the upload like
``callscreen import`` and imports it all or nothing; a bad file brings the Blocking page back
(400) with every bad row listed next to the file field, and nothing is imported.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ... import transfer
from ...db.store import ImportResult, ListedEntry
from ...ops import transfer as ops
from ...policy import Kind
from .blocking import Target, page_context, target_of
from .common import Page, page

#: Bytes of CSV gathered before a chunk is sent.
CHUNK = 64 * 1024
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9+#._-]")


def filename(t: Target, kind: Kind) -> str:
    """``callscreen-ext-101-block.csv`` / ``callscreen-account-allow.csv`` (ASCII only: it
    goes into a header)."""
    who = f"ext-{_UNSAFE_NAME.sub('_', t.ext)}" if t.ext is not None else "account"
    return f"callscreen-{who}-{kind.value}.csv"


async def csv_chunks(entries: AsyncGenerator[ListedEntry, None]) -> AsyncIterator[bytes]:
    """The CSV of ``entries``, header first, CHUNK bytes at a time (UTF-8, as the CLI's)."""
    buf = io.StringIO()
    writer = transfer.CsvWriter(buf, all_lists=False)
    async with contextlib.aclosing(entries) as it:
        async for e in it:
            writer.add(e)
            if buf.tell() >= CHUNK:
                yield buf.getvalue().encode()
                buf.seek(0)
                buf.truncate()
    yield buf.getvalue().encode()


def _download(kind: Kind) -> Any:
    @page
    async def download(p: Page) -> Response:
        t = target_of(p)
        entries = await ops.export_entries(p.store, p.actor, scope=t.scope, ext=t.ext, kind=kind)
        return StreamingResponse(
            csv_chunks(entries),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename(t, kind)}"'},
        )

    download.__name__ = f"{kind.value}_csv"
    return download


def imported(total: int, r: ImportResult) -> str:
    """The flash after an import: "Imported 3 numbers (1 already listed)"."""
    n = r.added + r.updated
    text = f"Imported {n:,} {'number' if n == 1 else 'numbers'} ({r.unchanged:,} already listed"
    if r.duplicates:
        text += f", {r.duplicates:,} repeated in the file"
    return text + ")"


def _import(kind: Kind) -> Any:
    @page
    async def import_(p: Page) -> Response:
        t = target_of(p)
        upload = p.file("file")
        data = await upload.read() if upload is not None else b""
        name = (upload.filename or "") if upload is not None else ""
        try:
            total, result = await ops.import_upload(
                p.store,
                p.actor,
                data,
                name=name,
                scope=t.scope,
                ext=t.ext,
                kind=kind,
                region=p.region,
            )
        except ops.BadFile as exc:
            ctx = await page_context(p, t)
            ctx["errors"] = {f"{kind.value}_import": {"summary": exc.summary, "rows": exc.rows}}
            return p.render("blocking.html", 400, **ctx)
        return p.done(t.base, imported(total, result))

    import_.__name__ = f"{kind.value}_import"
    return import_


def routes() -> list[Route]:
    out = []
    for base in ("/ext/{ext}", "/account"):
        for kind in Kind:
            out += [
                Route(f"{base}/{kind.value}.csv", _download(kind), methods=["GET"]),
                Route(f"{base}/{kind.value}/import", _import(kind), methods=["POST"]),
            ]
    return out
