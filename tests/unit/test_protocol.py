"""Pure parsing of every reply form Asterisk sends, and quoting of what we send."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from callscreen.fastagi.protocol import (
    _COMMANDS,
    _REPLIES,
    REPLY_KINDS,
    AgiEnv,
    Reply,
    ReplyKind,
    ReplyParser,
    command,
    parse_env,
    quote,
)


def feed_all(text: bytes) -> list[Reply]:
    parser, out = ReplyParser(), []
    for line in text.split(b"\n"):
        if (r := parser.feed(line)) is not None:
            out.append(r)
    return out


@pytest.mark.parametrize("name", sorted(REPLY_KINDS))
def test_every_named_reply_form_parses_to_its_kind(name: str) -> None:
    kind, text = REPLY_KINDS[name]
    [reply] = feed_all(text)
    assert reply.kind is kind


def test_200_fields() -> None:
    [r] = feed_all(b"200 result=49 (dtmf) endpos=8000")
    assert (r.result, r.data, r.endpos, r.ok) == (49, "dtmf", 8000, True)
    [r] = feed_all(b"200 result=1 (SUCCESS)")
    assert (r.result, r.data) == (1, "SUCCESS")
    [r] = feed_all(b"200 result=-1")
    assert r.result == -1 and r.data is None
    [r] = feed_all(b"200 result= (timeout)")
    assert r.result is None and r.data == "timeout"
    [r] = feed_all(b"200 result=1 (a value (with) parens)")
    assert r.data == "a value (with) parens"


def test_multiline_520_is_one_reply() -> None:
    parser = ReplyParser()
    assert parser.feed(b"520-Invalid command syntax.  Proper usage follows:") is None
    assert parser.feed(b" Usage: EXEC <application> <options>") is None
    r = parser.feed(b"520 End of proper usage.")
    assert r is not None and r.kind is ReplyKind.USAGE and "Usage: EXEC" in r.text


@pytest.mark.parametrize("line", [b"", b"garbage", b"2000 result=1", b"200 result=abc", b"51"])
def test_garbage(line: bytes) -> None:
    [r] = feed_all(line)
    assert r.kind is ReplyKind.GARBAGE


def test_crlf_and_invalid_utf8_are_tolerated() -> None:
    [r] = feed_all(b"200 result=1 (Jos\xc3)\r")
    assert r.ok and r.data == "Jos\ufffd"


def test_env_parsing() -> None:
    env = parse_env(
        b"agi_network: yes\nagi_network_script: screen?x=1\nagi_callerid: +1303\n"
        b"agi_calleridname: Jos\xc3\nagi_arg_1: 101\nagi_arg_1: 999\nnonsense\nfoo: bar\n"
        b"agi_accountcode: \n"
    )
    assert env["agi_network_script"] == "screen?x=1"
    assert env["agi_calleridname"] == "Jos\ufffd"
    assert env["agi_arg_1"] == "999"  # the arguments come last: the last line is Asterisk's
    assert env["agi_accountcode"] == ""
    assert "foo" not in env


@pytest.mark.parametrize("lazy", [False, True])
def test_a_line_forged_in_the_caller_name_never_wins(lazy: bool) -> None:
    """A caller name holding line breaks cannot pick the extension whose settings decide the
    call, nor the call's id: res_agi writes the name after the id and before the context, the
    extension and the arguments, so the real line is the first of the one and the last of the
    others."""
    forged = "\nagi_uniqueid: 1.1\nagi_extension: 999\nagi_arg_1: 999\nagi_arg_2: other"
    block = (
        "agi_network: yes\nagi_request: agi://127.0.0.1/screen\nagi_uniqueid: 1700000000.42\n"
        f"agi_callerid: +13035550100\nagi_calleridname: Mallory{forged}\nagi_callingpres: 0\n"
        "agi_context: from-pstn\nagi_extension: 101\nagi_priority: 2\n"
        "agi_arg_1: 101\nagi_arg_2: default\n"
    ).encode()
    env: Mapping[str, str] = AgiEnv(block) if lazy else parse_env(block)
    assert env["agi_uniqueid"] == "1700000000.42"
    assert env["agi_calleridname"] == "Mallory"
    assert env["agi_extension"] == "101"
    assert env["agi_arg_1"] == "101"
    assert env["agi_arg_2"] == "default"


@pytest.mark.parametrize(
    ("arg", "wire"),
    [
        ("101@default,u", '"101@default,u"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("line\nEXEC Dial", '"line EXEC Dial"'),
        ("\x00\x1b\r", '"   "'),
        ("", '""'),
    ],
)
def test_quote_exact_bytes(arg: str, wire: str) -> None:
    assert quote(arg) == wire


def test_command_is_one_line() -> None:
    assert command("EXEC Busy") == b"EXEC Busy\n"
    assert command("EXEC VoiceMail", "101@default,u") == b'EXEC VoiceMail "101@default,u"\n'
    assert command("SET VARIABLE", "X", 'a"\nb').count(b"\n") == 1
    with pytest.raises(ValueError):
        command("EXEC Set", "x" * 9000)


def test_command_lines_built_once_are_the_same_bytes_and_the_cache_stays_bounded() -> None:
    first = command("EXEC MSet", "CALLSCREEN_RESULT=ALLOWED,CALLSCREEN_REASON=not-listed")
    assert command("EXEC MSet", "CALLSCREEN_RESULT=ALLOWED,CALLSCREEN_REASON=not-listed") is first
    assert first == b'EXEC MSet "CALLSCREEN_RESULT=ALLOWED,CALLSCREEN_REASON=not-listed"\n'
    for i in range(2000):  # arguments that vary (a caller's text) do not grow it without end
        assert command("SET VARIABLE", "X", f'caller "{i}"\n') == (
            f'SET VARIABLE "X" "caller \\"{i}\\" "\n'.encode()
        )
    assert len(_COMMANDS) <= 512
    with pytest.raises(ValueError):  # a refused line is refused every time, never cached
        command("EXEC Set", "x" * 9000)


def test_replies_read_before_are_the_same_reply_and_the_cache_stays_bounded() -> None:
    parser = ReplyParser()
    first = parser.feed(b"200 result=0")
    assert first == Reply(ReplyKind.SUCCESS, result=0, text="200 result=0")
    assert ReplyParser().feed(b"200 result=0\r\n") is first
    for i in range(1000):  # replies that vary (endpos, a digit) do not grow it without end
        reply = parser.feed(f"200 result={i % 10} endpos={i}".encode())
        assert reply is not None and (reply.result, reply.endpos) == (i % 10, i)
    assert len(_REPLIES) <= 256
    # Garbage and other kinds are never cached: each is read as it comes.
    assert parser.feed(b"200 result=x").kind is ReplyKind.GARBAGE  # type: ignore[union-attr]
    assert "200 result=x" not in _REPLIES
