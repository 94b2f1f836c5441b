"""The per-call read on PostgreSQL: the same statements as :mod:`.lookup`, over asyncpg.

One round trip per call, like SQLite's one statement: the ``settings_version`` row (and the
account's id) with the caller's exact entries. Settings, prefixes and name rules are cached per
account and dropped when the version moves, so a change made on any node applies to the next
call on every node (no polling, no notification to miss).

The database is across a network here, so the read is bounded and a dead database is not
asked again and again: every query has ``query_timeout``, a connection ``connect_timeout``,
and after a failure calls fail open at once for ``retry_after`` seconds (one call then probes
again). Waiting calls never pile up behind a database that is gone: Asterisk's calls are let
through (the caller hears nothing of it) and the server recovers by itself.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

from ..policy import AccountSettings, Entry, ExtensionSettings
from .errors import StoreError, UnknownAccount
from .lookup import (
    ACCOUNT_SQL,
    DEFAULT_ACCOUNT,
    DEFAULT_ACCOUNT_ID,
    EXTENSION_SQL,
    MAX_ACCOUNT_NAME,
    NAMES_SQL,
    PREFIXES_SQL,
    VERSION_AND_EXACT_SQL,
    AccountCache,
    account_from_row,
    exact_entry_from_row,
    extension_from_row,
)
from .url import display


class PgLookup:
    """A read-only view for screening on PostgreSQL (see the module docstring)."""

    #: The screener awaits :meth:`fetch` (SQLite's :class:`.lookup.Lookup` is read inline).
    sync = False

    def __init__(
        self,
        url: str,
        *,
        query_timeout: float = 0.5,
        connect_timeout: float = 1.0,
        retry_after: float = 1.0,
        pool_size: int = 4,
    ) -> None:
        # asyncpg (and the driver, which imports it) is loaded only here: a SQLite server
        # loads nothing of PostgreSQL.
        import asyncpg

        from .backends.postgres import translate

        self._asyncpg = asyncpg
        self._sql = {
            name: translate(sql)
            for name, sql in (
                ("version_and_exact", VERSION_AND_EXACT_SQL),
                ("account", ACCOUNT_SQL),
                ("extension", EXTENSION_SQL),
                ("prefixes", PREFIXES_SQL),
                ("names", NAMES_SQL),
            )
        }
        self.url = url
        self.where = display(url)
        self.query_timeout = query_timeout
        self.connect_timeout = connect_timeout
        self.retry_after = retry_after
        self.pool_size = pool_size
        self._free: list[Any] = []  # idle connections
        self._count = 0  # connections open or being opened
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._down_until = 0.0  # monotonic: fail open at once until then
        self.last_error: str | None = None
        self._version: str | None = None
        self._accounts: dict[int, AccountCache] = {}
        self._ids: dict[str, int] = {DEFAULT_ACCOUNT: DEFAULT_ACCOUNT_ID}
        #: Round trips to the database, by kind (the benchmark reports them per call).
        self.round_trips = 0

    # -- the connections ----------------------------------------------------------------------
    # Our own small set rather than asyncpg's Pool: a call takes a free connection and gives it
    # back (a list pop and append); the pool's acquire/release machinery cost about as much
    # CPU as the query itself here, and its release ran a reset query, a second round trip.
    async def _take(self) -> Any:
        while True:
            if self._free:
                return self._free.pop()
            if self._count < self.pool_size:
                self._count += 1
                try:
                    return await self._asyncpg.connect(
                        self.url, timeout=self.connect_timeout, command_timeout=self.query_timeout
                    )
                except BaseException:
                    self._count -= 1
                    raise
            waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                conn = await waiter
            except asyncio.CancelledError:  # timed out: one handed over meanwhile goes back
                if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                    self._give(waiter.result())
                raise
            if conn is not None:
                return conn
            # None: a connection failed and freed its place: open a new one (the loop)

    def _give(self, conn: Any) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._free.append(conn)

    def _drop(self, conn: Any) -> None:
        """A connection that failed: closed, and its place freed for a new one."""
        self._count -= 1
        conn.terminate()
        while self._waiters:  # a waiter opens a new one in its place
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection (a call in flight fails open)."""
        free, self._free = self._free, []
        for conn in free:
            conn.terminate()
        self._count -= len(free)

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        """One statement, bounded; every failure is a StoreError and opens the breaker."""
        now = time.monotonic()
        if now < self._down_until:
            raise StoreError(f"{self.last_error} (failing open; retrying shortly)")
        conn = None
        try:
            # One bound over everything: connecting, waiting for a free connection, the query.
            async with asyncio.timeout(self.connect_timeout + self.query_timeout):
                conn = await self._take()
                self.round_trips += 1
                rows = await conn.fetch(sql, *args, timeout=self.query_timeout)
            self._give(conn)
            return list(rows)
        except BaseException as exc:
            if conn is not None:
                self._drop(conn)
            if isinstance(exc, OSError | TimeoutError):
                error = f"{self.where} unreachable: {exc or 'no answer in time'}"
                self._fail(error)
                raise StoreError(error) from exc
            asyncpg = self._asyncpg
            if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
                if not isinstance(exc, asyncpg.PostgresError) or isinstance(
                    exc, asyncpg.PostgresConnectionError | asyncpg.CannotConnectNowError
                ):
                    self._fail(f"PostgreSQL: {exc}")
                raise StoreError(f"PostgreSQL: {exc}") from exc
            raise

    def _fail(self, error: str) -> None:
        self.last_error = error
        self._down_until = time.monotonic() + self.retry_after
        self._version = None
        self.close()  # the idle connections may be half dead: start afresh on recovery

    def unreachable(self) -> str | None:
        """Why calls fail open right now (the last error, while the breaker is open)."""
        if time.monotonic() < self._down_until:
            return self.last_error or "unreachable"
        return None

    # -- the read -----------------------------------------------------------------------------
    def account_id(self, account: str) -> int | None:
        """The id of an account a call named before (None: not seen)."""
        return self._ids.get(account)

    async def fetch(
        self,
        ext: str,
        e164: str | None,
        name: str | None = None,
        account: str = DEFAULT_ACCOUNT,
    ) -> tuple[AccountSettings, ExtensionSettings, list[Entry]]:
        """As :meth:`.lookup.Lookup.read` (raises StoreError, UnknownAccount)."""
        if len(account) > MAX_ACCOUNT_NAME:
            raise UnknownAccount(account[:MAX_ACCOUNT_NAME] + "...")
        now = time.time()
        rows = await self._fetch(
            self._sql["version_and_exact"], account, account, e164 or "", ext, now
        )
        if not rows or rows[0][0] is not None:
            raise StoreError("the settings_version row is missing")
        if rows[0][2] is None:
            raise UnknownAccount(account)
        account_id = self._ids[account] = int(rows[0][2])
        version = rows[0][1]
        if version != self._version:
            self._accounts.clear()
            self._version = version
        cache = self._accounts.get(account_id)
        if cache is None:
            cache = await self._load(account_id)
            if self._version == version:  # else a newer version came meanwhile: use it once
                self._accounts[account_id] = cache
        settings = cache.extensions.get(ext)
        if settings is None:
            row = await self._fetch(self._sql["extension"], account_id, ext)
            try:
                settings = cache.extensions[ext] = extension_from_row(
                    ext, tuple(row[0]) if row else None
                )
            except ValueError as exc:
                raise StoreError(f"reading settings of {ext}: {exc}") from exc
        found = [exact_entry_from_row(tuple(r), e164 or "") for r in rows[1:]]
        if cache.prefixes or cache.names:
            found += cache.matches(e164, name, now)
        return cache.account, settings, found

    async def _load(self, account_id: int) -> AccountCache:
        account = await self._fetch(self._sql["account"], account_id)
        prefixes = await self._fetch(self._sql["prefixes"], account_id)
        names = await self._fetch(self._sql["names"], account_id)
        if not account:
            raise StoreError("the account row is missing")
        try:
            return AccountCache(
                account_from_row(tuple(account[0]), account_id),
                [tuple(r) for r in prefixes],
                [tuple(r) for r in names],
            )
        except (TypeError, ValueError) as exc:
            self._version = None
            raise StoreError(f"reading settings: {exc}") from exc
