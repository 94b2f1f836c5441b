"""The Blocking page, "Call Management > Blocking": an extension's (``/ext/EXT``) and, for
admins, the account's (``/account``), one template for both.

Every change is one small form posting to its own URL and one ops call; on success the page
comes back (303) with a one-line confirmation, on a bad number it comes back with what was typed
and the ops error next to the field, and nothing is saved. Permission is ops' decision: a user
who types another extension's URL gets ops' "you may not manage extension 102" as a 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from ...ops import lists, settings
from ...ops.errors import InvalidInput
from ...policy import Kind, Scope
from .common import Page, page, url

#: Rows of a list on one page (keyset paging: every page costs the same on a million).
PAGE_SIZE = 50
RECENT_CALLS = 20
#: What "block for 30 days" sends as ``for``.
TEMPORARY = "30d"

TREATMENTS = {
    "voicemail": ("Voicemail", "The caller is sent to voicemail, as if nobody answered."),
    "busy": ("Busy", "The caller hears a busy signal and the call ends."),
    "torture": ("Endless ringing", "The caller hears ringing that never ends, until they give up."),
}
#: A call's reason in the words of the page.
REASONS = {
    "allowlist": "on an allowed list",
    "anonymous": "no caller ID",
    "ext-blocklist": "on this extension's blocked list",
    "account-blocklist": "blocked for the whole account",
    "name-rule": "the caller's name matched a blocked name",
    "blocking-off": "blocking was off",
    "not-listed": "not on a list",
    "challenge-passed": "pressed the right digit",
    "challenge-failed": "did not press the right digit",
    "error": "let through on an error",
}
HEARS = {"voicemail": "voicemail", "busy": "busy", "torture": "endless ringing"}
#: The challenge: what a caller who fails gets, and how long one who passes is remembered.
FALLBACKS = {
    "voicemail": ("Voicemail", "They may leave a message."),
    "busy": ("Busy", "They hear a busy signal."),
    "hangup": ("Hang up", "The call ends."),
}
REMEMBER = {"0": "Never", "7d": "7 days", "30d": "30 days", "90d": "90 days"}
#: The confirmation after a change of one of the challenge settings.
SAVED = {
    ("anonymous", "allow"): "Saved: callers without caller ID ring through",
    ("anonymous", "block"): "Saved: callers without caller ID are blocked",
    ("anonymous", "challenge"): "Saved: callers without caller ID must press a digit",
    ("unknown", "allow"): "Saved: callers not on a list ring through",
    ("unknown", "challenge"): "Saved: callers not on a list must press a digit",
}


@dataclass(frozen=True, slots=True)
class Target:
    """Whose lists and settings a request changes: an extension's or the account's."""

    scope: Scope
    ext: str | None

    @property
    def base(self) -> str:
        return f"/ext/{self.ext}" if self.ext is not None else "/account"

    @property
    def what(self) -> str:  # the subject of the status line and the on/off button
        return "Call blocking" if self.ext is not None else "Account-wide blocking"


def target_of(p: Page) -> Target:
    ext = p.request.path_params.get("ext")
    return Target(Scope.EXTENSION, ext) if ext is not None else Target(Scope.ACCOUNT, None)


async def _list(p: Page, t: Target, kind: Kind) -> dict[str, Any]:
    q = p.request.query_params.get(f"{kind.value}_q") or None
    after_raw = p.request.query_params.get(f"{kind.value}_after")
    after = None
    if after_raw:
        if not after_raw.isdigit() or len(after_raw) > 18:
            raise InvalidInput(f"{kind.value}_after: expected an entry id")
        after = int(after_raw)
    data = await lists.list_entries(
        p.store,
        p.actor,
        scope=t.scope,
        ext=t.ext,
        kind=kind,
        limit=PAGE_SIZE,
        q=q[:200] if q else None,
        after=after,
        region=p.region,
    )
    data["q"] = q or ""
    return data


def _call_row(call: dict[str, Any], blocklisted: bool) -> dict[str, Any]:
    """A recent call and the one button next to it: Unblock a caller on this extension's
    blocked list now (whatever the call got then), Block one who got through and is not."""
    number = call.get("caller_e164")
    action = None
    if number:
        if blocklisted:
            action = "unblock"
        elif call["result"] == "ALLOWED" and call["reason"] != "allowlist":
            action = "block"
    return {**call, "action": action}


async def page_context(p: Page, t: Target) -> dict[str, Any]:
    if t.ext is not None:
        state = await settings.ext_show(p.store, p.actor, t.ext)
    else:
        state = await settings.account_show(p.store, p.actor)
    block = await _list(p, t, Kind.BLOCK)
    allow = await _list(p, t, Kind.ALLOW)
    calls: list[dict[str, Any]] = []
    if t.ext is not None:
        recent = await settings.recent_calls(p.store, p.actor, t.ext, limit=RECENT_CALLS)
        listed = await _listed(p, t, {c["caller_e164"] for c in recent if c["caller_e164"]})
        calls = [_call_row(c, c["caller_e164"] in listed) for c in recent]
    title = f"Call blocking for extension {t.ext}" if t.ext is not None else "Account"
    return {
        "title": title,
        "target": t,
        "state": state,
        "lists": {"block": block, "allow": allow},
        "calls": calls,
        "treatments": TREATMENTS,
        "fallbacks": FALLBACKS,
        "remember_choices": REMEMBER,
        "reasons": REASONS,
        "query": dict(p.request.query_params),
        "errors": {},
        "typed": {},
    }


async def _listed(p: Page, t: Target, numbers: set[str]) -> set[str]:
    """Which of ``numbers`` are on the extension's blocklist (one indexed lookup each)."""
    found = set()
    for n in numbers:
        page_ = await lists.list_entries(
            p.store, p.actor, scope=t.scope, ext=t.ext, kind=Kind.BLOCK, limit=2, q=n
        )
        # limit 2: a caller-name rule may be spelled like the number (it is not the number's).
        if any(e["value"] == n and e["field"] == "number" for e in page_["entries"]):
            found.add(n)
    return found


@page
async def show(p: Page) -> Response:
    t = target_of(p)
    return p.render("blocking.html", **await page_context(p, t))


def _on_off(value: str) -> bool:
    if value not in ("on", "off"):
        raise InvalidInput("enabled: expected on or off")
    return value == "on"


@page
async def change_settings(p: Page) -> Response:
    """One setting per form: the on/off button, or one button of a choice."""
    t = target_of(p)

    def field(name: str) -> str | None:
        return p.field(name) if name in p.form else None

    enabled = _on_off(p.field("enabled")) if "enabled" in p.form else None
    changes = {
        "anonymous": field("anonymous"),
        "treatment": field("treatment"),
        "unknown": field("unknown"),
        "remember": field("remember"),
        "challenge_fallback": field("challenge_fallback"),
    }
    if t.ext is not None:
        await settings.ext_set(p.store, p.actor, t.ext, enabled=enabled, **changes)
    else:
        await settings.account_set(p.store, p.actor, enabled=enabled, **changes)
    anonymous, unknown = changes["anonymous"], changes["unknown"]
    treatment, remember = changes["treatment"], changes["remember"]
    fallback = changes["challenge_fallback"]
    if enabled is not None:
        message = f"{t.what} is {'on' if enabled else 'off'}"
    elif anonymous is not None:
        message = SAVED[("anonymous", anonymous)]
    elif unknown is not None:
        message = SAVED[("unknown", unknown)]
    elif treatment is not None:
        message = f"Saved: blocked callers hear {HEARS.get(treatment, treatment)}"
    elif fallback is not None:
        label = FALLBACKS[fallback][0].lower() if fallback in FALLBACKS else "the account's"
        message = f"Saved: callers who fail the challenge get {label}"
    elif remember is not None:
        how = REMEMBER.get(remember, remember).lower()
        message = (
            "Saved: callers who pass the challenge are not remembered"
            if remember == "0"
            else f"Saved: callers who pass the challenge are allowed for {how}"
        )
    else:
        raise InvalidInput("nothing to change")
    return p.done(t.base, message)


def _add(kind: Kind) -> Any:
    @page
    async def add(p: Page) -> Response:
        t = target_of(p)
        number, note = p.field("number"), p.field("note")
        try:
            result = await lists.list_add(
                p.store,
                p.actor,
                scope=t.scope,
                ext=t.ext,
                kind=kind,
                numbers=[number],
                note=note,
                for_=TEMPORARY if kind is Kind.BLOCK and p.field("days30") else None,
                region=p.region,
            )
        except InvalidInput as exc:
            ctx = await page_context(p, t)
            ctx["errors"] = {kind.value: str(exc).strip().splitlines()[0]}
            ctx["typed"] = {kind.value: {"number": number, "note": note}}
            return p.render("blocking.html", 400, **ctx)
        if result["added"]:
            verb = "Blocked" if kind is Kind.BLOCK else "Allowed"
            message = f"{verb} {result['added'][0]}"
        else:
            message = f"{result['already_listed'][0]} was already listed"
        return p.done(t.base, message)

    add.__name__ = f"{kind.value}_add"
    return add


@page
async def block_name(p: Page) -> Response:
    """Block a caller name (a name rule): the Blocked Numbers card's second form."""
    t = target_of(p)
    name, note = p.field("name"), p.field("note")
    try:
        result = await lists.list_add(
            p.store,
            p.actor,
            scope=t.scope,
            ext=t.ext,
            kind=Kind.BLOCK,
            numbers=[],
            names=[name],
            note=note,
            for_=TEMPORARY if p.field("days30") else None,
        )
    except InvalidInput as exc:
        ctx = await page_context(p, t)
        ctx["errors"] = {"block_name": str(exc).strip().splitlines()[0]}
        ctx["typed"] = {"block_name": {"name": name, "note": note}}
        return p.render("blocking.html", 400, **ctx)
    if result["added"]:
        message = f"Blocked callers named {result['added'][0]}"
    else:
        message = f"Callers named {result['already_listed'][0]} were already blocked"
    return p.done(t.base, message)


def _remove(kind: Kind) -> Any:
    @page
    async def remove(p: Page) -> Response:
        t = target_of(p)
        name = p.field("name") if "name" in p.form else None  # a name rule's Remove button
        result = await lists.list_remove(
            p.store,
            p.actor,
            scope=t.scope,
            ext=t.ext,
            kind=kind,
            numbers=[] if name is not None else [p.field("number")],
            names=[name] if name is not None else [],
            region=p.region,
        )
        if result["removed"]:
            message = f"Removed {result['removed'][0]}"
        else:
            message = f"{result['not_listed'][0]} was not listed"
        return p.done(t.base, message)

    remove.__name__ = f"{kind.value}_remove"
    return remove


def routes() -> list[Route]:
    out = []
    for base in ("/ext/{ext}", "/account"):
        out += [
            Route(base, show, methods=["GET"]),
            Route(base + "/settings", change_settings, methods=["POST"]),
        ]
        for kind in Kind:
            out += [
                Route(f"{base}/{kind.value}", _add(kind), methods=["POST"]),
                Route(f"{base}/{kind.value}/remove", _remove(kind), methods=["POST"]),
            ]
        out.append(Route(f"{base}/block/name", block_name, methods=["POST"]))
    return out


__all__ = ["routes", "url"]
