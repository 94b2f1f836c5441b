"""``import`` and ``export``: lists to and from CSV or JSON files."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

import click
from click.core import ParameterSource

from .. import transfer
from ..db.store import ImportResult, NewEntry, Store
from ..ops import lists as ops
from ..policy import Kind, Scope
from .base import Ctx, JsonArray, bad, cli, echo, emit_json, scope_of

#: Files smaller than this import without a progress bar.
PROGRESS_BYTES = 1 << 20


def _target(ext: str | None, account: bool, all_lists: bool, kind: Kind) -> transfer.Target:
    if sum((bool(ext), account, all_lists)) != 1:
        bad("give exactly one of --ext EXT, --account or --all")
    if all_lists:
        return transfer.Target(None, "", kind, all_lists=True)
    scope, ext = scope_of(ext, account)
    return transfer.Target(scope, ext or "", kind)


@contextlib.contextmanager
def _progress(total: int, what: str) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on stderr when it is a terminal and the job is big; else None."""
    if total < 1 or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.update(task, completed=n)


def _format(fmt: str | None, path: str) -> str:
    if fmt:
        return fmt
    return "json" if path.lower().endswith(".json") else "csv"


def _read(path: str, fmt: str, target: transfer.Target, region: str) -> list[NewEntry]:
    """Parse the whole file first: one bad row and nothing is written (exit 2, every bad row
    reported with its line)."""
    f: IO[bytes]
    if path == "-":
        f, size = sys.stdin.buffer, 0
    else:
        try:
            f, size = open(path, "rb"), os.path.getsize(path)  # noqa: SIM115 (closed below)
        except OSError as exc:
            bad(f"cannot read {path}: {exc.strerror or exc}")
    try:
        with _progress(size if size >= PROGRESS_BYTES else 0, f"reading {path}") as tick:
            done = 0

            def count(n: int) -> None:
                nonlocal done
                done += n
                if tick is not None and done % 65536 < n:
                    tick(done)

            lines = transfer.CountingLines(f, count)
            rows, bad_rows = transfer.read_entries(lines, fmt, target, region)
    except transfer.FileError as exc:
        bad(f"{path}: {exc}")
    except UnicodeDecodeError as exc:
        bad(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})")
    finally:
        if f is not sys.stdin.buffer:
            f.close()
    if bad_rows:
        for b in bad_rows:
            echo(f"callscreen: error: {path} {b}", err=True)
        s = "" if len(bad_rows) == 1 else "s"
        bad(f"{len(bad_rows)} bad row{s} in {path}: nothing imported")
    return rows


@cli.command(name="import")
@click.option("--ext", metavar="EXT", help="Into the extension's list.")
@click.option("--account", is_flag=True, help="Into the account-wide list.")
@click.option("--all", "all_lists", is_flag=True, help="Every list: an `export --all` file.")
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--list",
    "kind",
    type=click.Choice([k.value for k in Kind]),
    default=Kind.BLOCK.value,
    show_default=True,
    help="Which list of the extension or account.",
)
@click.option(
    "--format", "fmt", type=click.Choice(transfer.FORMATS), help="Default: from the file name."
)
@click.option("--dry-run", is_flag=True, help="Check the file and count, write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def import_(
    ctx: click.Context,
    ext: str | None,
    account: bool,
    all_lists: bool,
    file: str,
    kind: str,
    fmt: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Add every number in FILE (CSV or JSON; `-`: stdin) to a list, all or nothing.

    CSV columns: number, note (a header row is optional); an export's raw and expires columns
    are read too. Numbers already listed are counted, not duplicated.
    """
    obj: Ctx = ctx.obj
    if all_lists and ctx.get_parameter_source("kind") is ParameterSource.COMMANDLINE:
        bad("--list does not go with --all (each row names its list)")
    target = _target(ext, account, all_lists, Kind(kind))
    rows = _read(file, _format(fmt, file), target, obj.region)

    total = len(rows)

    def drain() -> Iterator[NewEntry]:  # hand the rows over one by one: half the memory
        rows.reverse()
        while rows:
            yield rows.pop()

    async def go(s: Store) -> ImportResult:
        with _progress(total if total >= 100_000 else 0, "writing") as tick:
            return await ops.import_rows(
                s,
                obj.actor,
                drain(),
                scope=target.scope,
                ext=target.ext or None,
                kind=None if target.all_lists else target.kind,
                dry_run=dry_run,
                progress=tick,
            )

    result = obj.run(go)
    data: dict[str, Any] = {
        "rows": total,
        "added": result.added,
        "updated": result.updated,
        "already_listed": result.unchanged,
        "duplicates": result.duplicates,
        "dry_run": dry_run,
    }
    if as_json:
        emit_json(data)
        return
    verb = "would import" if dry_run else "imported"
    echo(
        f"{verb} {file}: {total:,} rows, {result.added:,} added, {result.updated:,} renewed,"
        f" {result.unchanged:,} already listed, {result.duplicates:,} repeated in the file"
    )


@cli.command(name="export")
@click.option("--ext", metavar="EXT", help="The extension's list.")
@click.option("--account", is_flag=True, help="The account-wide list.")
@click.option("--all", "all_lists", is_flag=True, help="Every list, with scope/ext/kind columns.")
@click.option(
    "--list",
    "kind",
    type=click.Choice([k.value for k in Kind]),
    default=Kind.BLOCK.value,
    show_default=True,
    help="Which list of the extension or account.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(transfer.FORMATS),
    default="csv",
    show_default=True,
    help="CSV with a header row, or a JSON array.",
)
@click.pass_context
def export(
    ctx: click.Context, ext: str | None, account: bool, all_lists: bool, kind: str, fmt: str
) -> None:
    """Write a list (or every list) to stdout, streamed: `import` reads it back exactly."""
    obj: Ctx = ctx.obj
    if all_lists and ctx.get_parameter_source("kind") is ParameterSource.COMMANDLINE:
        bad("--list does not go with --all (every list is exported)")
    target = _target(ext, account, all_lists, Kind(kind))
    scope: Scope | None = target.scope
    list_kind = None if all_lists else target.kind

    async def go(s: Store) -> None:
        # aclosing: a reader that goes away (| head) closes the cursor before the store.
        async with contextlib.aclosing(s.iter_entries(scope, target.ext or None, list_kind)) as it:
            if fmt == "json":
                with JsonArray() as out:
                    async for e in it:
                        out.add(transfer.json_item(e, all_lists))
            else:
                writer = transfer.CsvWriter(sys.stdout, all_lists)
                async for e in it:
                    writer.add(e)
                sys.stdout.flush()

    obj.run(go)
