"""Settings of an extension and of the account, the decision for one caller, the call log of
an extension, and the audit log.

Changes validate first (with the CLI's words), then ask permission, then write the change and
its audit row (the whole settings before and after) in one store transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from ..db.errors import InvalidInput
from ..db.lookup import Lookup
from ..db.pglookup import PgLookup
from ..db.reports import LoggedCall
from ..db.store import INHERIT, Inherit, Store, check_ext, check_mailbox, check_treatment
from ..db.url import is_postgres
from ..db.validate import check_fallback, check_rule
from ..numbers import DEFAULT_REGION, Caller, InvalidNumber, caller_from, is_anonymous, normalize
from ..policy import (
    UNKNOWN_RULES,
    AccountSettings,
    Decision,
    Entry,
    ExtensionSettings,
    Kind,
    Result,
    Rule,
    Scope,
    Treatment,
    fallback_for,
    remember_for,
)
from ..policy import decide as policy_decide
from ..timeutil import format_duration, parse_retention, when
from .actor import Actor, permit_admin, permit_ext
from .lists import audit_entry

ANONYMOUS = tuple(Rule)
#: The word that sets an extension's remember/fallback back to the account's.
ACCOUNT_DEFAULT = "account"


def ext_json(s: ExtensionSettings, account: AccountSettings) -> dict[str, Any]:
    """An extension's settings as ``ext show --json`` prints them (without the counts)."""
    return {
        "ext": s.ext,
        "enabled": s.enabled,
        "anonymous": s.anonymous.value,
        "unknown": s.unknown.value,
        "treatment": (s.treatment or account.treatment).value,
        "treatment_set": s.treatment is not None,
        "mailbox": s.voicemail_box,
        "remember": format_duration(remember_for(account, s)),
        "remember_set": s.remember is not None,
        "challenge_fallback": fallback_for(account, s).value,
        "challenge_fallback_set": s.fallback is not None,
    }


def account_json(s: AccountSettings) -> dict[str, Any]:
    return {
        "enabled": s.enabled,
        "anonymous": s.anonymous.value,
        "unknown": s.unknown.value,
        "treatment": s.treatment.value,
        "remember": format_duration(s.remember),
        "challenge_fallback": s.fallback.value,
    }


def _enabled(value: object) -> bool | None:
    # A JSON body may say "yes" or 1: only a real bool is an answer (bool is not an int here).
    if value is not None and not isinstance(value, bool):
        raise InvalidInput("enabled: expected true or false")
    return value


def _anonymous(value: object) -> Rule | None:
    return None if value is None else check_rule(value, "anonymous", ANONYMOUS)


def _unknown(value: object) -> Rule | None:
    return None if value is None else check_rule(value, "unknown", UNKNOWN_RULES)


def _treatment(value: object) -> Treatment | None:
    return None if value is None else check_treatment(value)


def _remember(value: object, *, inherit: bool) -> float | Inherit | None:
    """``30d`` / ``12h`` / ``0`` (not remembered) -> seconds; ``account`` -> the account's."""
    if value is None:
        return None
    if inherit and value == ACCOUNT_DEFAULT:
        return INHERIT
    hint = " or account" if inherit else ""
    if not isinstance(value, str):
        raise InvalidInput(f"remember: not a duration: {value!r} (e.g. 30d, 12h, 0{hint})")
    try:
        return parse_retention(value)
    except ValueError:
        raise InvalidInput(
            f"remember: not a duration: {value!r} (e.g. 30d, 12h, 0{hint})"
        ) from None


def _fallback(value: object, *, inherit: bool) -> Treatment | Inherit | None:
    if value is None:
        return None
    if inherit and value == ACCOUNT_DEFAULT:
        return INHERIT
    return check_fallback(value)


async def ext_show(store: Store, actor: Actor, ext: str) -> dict[str, Any]:
    """An extension's settings (defaults if never configured) and its list sizes."""
    check_ext(ext)
    permit_ext(actor, ext)
    account, settings = await store.settings(ext)
    data = ext_json(settings, account)
    data["blocked_numbers"] = await store.count_entries(Scope.EXTENSION, ext, Kind.BLOCK)
    data["allowed_numbers"] = await store.count_entries(Scope.EXTENSION, ext, Kind.ALLOW)
    return data


async def ext_set(
    store: Store,
    actor: Actor,
    ext: str,
    *,
    enabled: bool | None = None,
    anonymous: str | None = None,
    treatment: str | None = None,
    mailbox: str | None = None,
    unknown: str | None = None,
    remember: str | None = None,
    challenge_fallback: str | None = None,
) -> dict[str, Any]:
    """Change an extension's settings (as ``ext set --json``). The mailbox is an admin's: it
    routes a caller into any voicemail box of the PBX. ``remember`` and
    ``challenge_fallback`` may be ``account``: back to the account's."""
    check_ext(ext)
    on = _enabled(enabled)
    anon = _anonymous(anonymous)
    treat = _treatment(treatment)
    unk = _unknown(unknown)
    keep = _remember(remember, inherit=True)
    fall = _fallback(challenge_fallback, inherit=True)
    if mailbox is not None:
        if not isinstance(mailbox, str):
            raise InvalidInput(
                f"not a mailbox: {mailbox!r} (expected BOX@CONTEXT, e.g. 101@default)"
            )
        if mailbox:
            check_mailbox(mailbox)
    permit_ext(actor, ext)
    if mailbox is not None:
        permit_admin(actor)
    settings = await store.set_extension(
        ext,
        enabled=on,
        anonymous=anon,
        treatment=treat,
        mailbox=mailbox,
        unknown=unk,
        remember=keep,
        fallback=fall,
        audit=audit_entry(actor, "ext.set", f"ext:{ext}"),
    )
    return ext_json(settings, await store.account_settings())


async def ext_list(store: Store, actor: Actor) -> list[dict[str, Any]]:
    """An admin: every configured extension. A user: their own, configured or not."""
    account = await store.account_settings()
    if actor.is_admin:
        return [ext_json(e, account) for e in await store.extensions()]
    return [ext_json((await store.settings(e))[1], account) for e in sorted(actor.extensions)]


async def ext_overview(store: Store, actor: Actor) -> list[dict[str, Any]]:
    """Every configured extension with its list sizes (as ``ext show``), for the portal's
    Extensions page: an admin's. The sizes are lookups in list_sizes, not counts."""
    permit_admin(actor)
    account = await store.account_settings()
    out = []
    for e in await store.extensions():
        data = ext_json(e, account)
        data["blocked_numbers"] = await store.count_entries(Scope.EXTENSION, e.ext, Kind.BLOCK)
        data["allowed_numbers"] = await store.count_entries(Scope.EXTENSION, e.ext, Kind.ALLOW)
        out.append(data)
    return out


async def account_show(store: Store, actor: Actor) -> dict[str, Any]:
    permit_admin(actor)
    return account_json(await store.account_settings())


async def account_set(
    store: Store,
    actor: Actor,
    *,
    enabled: bool | None = None,
    anonymous: str | None = None,
    treatment: str | None = None,
    unknown: str | None = None,
    remember: str | None = None,
    challenge_fallback: str | None = None,
) -> dict[str, Any]:
    """Change the account-wide settings (an admin's: they apply to every extension)."""
    on = _enabled(enabled)
    anon = _anonymous(anonymous)
    treat = _treatment(treatment)
    unk = _unknown(unknown)
    keep = _remember(remember, inherit=False)
    fall = _fallback(challenge_fallback, inherit=False)
    permit_admin(actor)
    settings = await store.set_account(
        enabled=on,
        anonymous=anon,
        treatment=treat,
        unknown=unk,
        remember=keep if isinstance(keep, float) else None,
        fallback=fall if isinstance(fall, Treatment) else None,
        audit=audit_entry(actor, "account.set", "account"),
    )
    return account_json(settings)


async def _decide(
    store: Store, ext: str, who: Caller
) -> tuple[AccountSettings, ExtensionSettings, Decision]:
    """The call path's own read and decision, on the store's database and account."""
    if is_postgres(store.path):
        pg = PgLookup(str(store.path))
        try:
            read = await pg.fetch(ext, who.e164, who.name, store.account)
        finally:
            await pg.aclose()
    else:

        def sqlite_read() -> tuple[AccountSettings, ExtensionSettings, list[Entry]]:
            lookup = Lookup(store.path)  # opening may migrate: off the event loop
            try:
                return lookup.read(ext, who.e164, who.name, store.account)
            finally:
                lookup.close()

        read = await asyncio.to_thread(sqlite_read)
    account, settings, entries = read
    return account, settings, policy_decide(account, settings, who, entries)


async def check(
    store: Store,
    actor: Actor,
    ext: str,
    caller: str,
    *,
    callingpres: int | None = None,
    region: str = DEFAULT_REGION,
    name: str | None = None,
) -> dict[str, Any]:
    """The decision the server would make for ``caller`` calling ``ext`` (as ``check --json``),
    read through the call path's own Lookup (so it cannot disagree with a real call).
    ``name`` is the caller's name as Asterisk would send it (``agi_calleridname``)."""
    check_ext(ext)
    try:
        if not is_anonymous(caller, callingpres):
            normalize(caller, region)
    except InvalidNumber as exc:
        raise InvalidInput(str(exc)) from None
    permit_ext(actor, ext)
    who = caller_from(caller, "0" if callingpres is None else str(callingpres), region, name)
    account, settings, decision = await _decide(store, ext, who)
    out = decision_json(ext, who.raw, who.e164, who.anonymous, settings, decision)
    out["caller"]["name"] = name
    if decision.result is Result.CHALLENGED:
        fallback = fallback_for(account, settings)
        out["challenge"] = {
            "passed": {"result": "ALLOWED", "reason": "challenge-passed"},
            "failed": {
                "result": "BLOCKED",
                "reason": "challenge-failed",
                "treatment": fallback.value,
                "mailbox": settings.voicemail_box if fallback is Treatment.VOICEMAIL else None,
            },
            "remember": format_duration(remember_for(account, settings)),
        }
    return out


def decision_json(
    ext: str, raw: str, e164: str | None, anonymous: bool, settings: ExtensionSettings, d: Decision
) -> dict[str, Any]:
    entry = None
    if d.entry is not None:
        entry = {
            "id": d.entry.id,
            "scope": d.entry.scope.value,
            "kind": d.entry.kind.value,
            "pattern": d.entry.pattern,
            "field": d.entry.field.value,
            "raw": d.entry.raw,
            "note": d.entry.note,
        }
    return {
        "ext": ext,
        "caller": {"raw": raw, "e164": e164, "anonymous": anonymous},
        "result": d.result.value,
        "reason": d.reason.value,
        "treatment": d.treatment.value if d.treatment else None,
        "mailbox": settings.voicemail_box if d.treatment is Treatment.VOICEMAIL else None,
        "entry": entry,
    }


def call_json(c: LoggedCall) -> dict[str, Any]:
    """One call as ``log --json`` prints it."""
    out = dataclasses.asdict(c)
    out["time"] = when(c.time)
    out["duration"] = round(c.duration, 3)
    return out


async def recent_calls(
    store: Store, actor: Actor, ext: str, *, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest calls to ``ext`` first."""
    check_ext(ext)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInput("limit: expected a number of at least 1")
    permit_ext(actor, ext)
    return [call_json(c) for c in await store.logged_calls(ext, limit=limit)]


async def audit_list(
    store: Store,
    actor: Actor,
    *,
    since: float | None = None,
    limit: int = 100,
    before: int | None = None,
) -> list[dict[str, Any]]:
    """Who changed what, from where: newest first (an admin's); ``before`` a row id: the
    rows older than it (the next page)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInput("limit: expected a number of at least 1")
    if before is not None and (isinstance(before, bool) or not isinstance(before, int)):
        raise InvalidInput("before: expected an audit row id")
    permit_admin(actor)
    return [
        {
            "id": r.id,
            "time": when(r.time),
            "actor": r.actor,
            "source": r.source,
            "ip": r.ip,
            "action": r.action,
            "target": r.target,
            "before": r.before,
            "after": r.after,
        }
        for r in await store.audit_log(since=since, limit=limit, before=before)
    ]
