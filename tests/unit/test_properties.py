"""Property tests: the parsers never crash, and what we send always reads back as sent.

``make fuzz`` runs each property 25,000 times (over 100,000 inputs in all).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import re
import tempfile
from pathlib import Path

import phonenumbers
from hypothesis import given
from hypothesis import strategies as st

from callscreen import inert
from callscreen.cli import cli
from callscreen.db.schema import connect
from callscreen.db.store import CallRecord, ListedEntry, Store
from callscreen.fastagi.protocol import AgiEnv, ReplyKind, ReplyParser, command, parse_env
from callscreen.numbers import InvalidNumber, _already_normal, caller_from, normalize, parse_pattern
from callscreen.policy import Entry, Kind, Scope
from callscreen.transfer import CsvWriter, FileError, Target, read_entries


def asterisk_parse_args(line: str) -> list[str]:
    """res_agi.c parse_args(), transcribed: how Asterisk splits a command line into words."""
    args: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    whitespace = True
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                cur = []
                args.append("")
                whitespace = False
            escaped = False
            continue
        if ch in " \t" and not quoted and not escaped:
            whitespace = True
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            cur = []
            args.append("")
            whitespace = False
        assert cur is not None
        args[-1] += ch
        escaped = False
    return args


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@given(st.text())
def test_quoted_argument_reads_back_as_one_word(arg: str) -> None:
    wire = command("EXEC VoiceMail", arg)
    assert wire.endswith(b"\n") and wire.count(b"\n") == 1  # never a second command
    words = asterisk_parse_args(wire.decode()[:-1])
    assert words == ["EXEC", "VoiceMail", _CONTROL.sub(" ", arg)]


@given(st.binary(max_size=4096))
def test_env_parser_never_raises(block: bytes) -> None:
    env = parse_env(block)
    assert all(k.startswith("agi_") and isinstance(v, str) for k, v in env.items())


@given(st.lists(st.binary(max_size=200), max_size=20))
def test_reply_parser_never_raises(lines: list[bytes]) -> None:
    parser = ReplyParser()
    for line in lines:
        reply = parser.feed(line.replace(b"\n", b""))
        if reply is not None:
            assert isinstance(reply.kind, ReplyKind)
    # A closing "520 " line always ends an open usage block.
    if (r := parser.feed(b"520 End of proper usage.")) is not None:
        assert r.kind is ReplyKind.USAGE


@given(
    st.integers(min_value=-(2**40), max_value=2**40),
    st.text(max_size=40),
    st.integers(min_value=0, max_value=2**31),
)
def test_reply_200_fields_round_trip(result: int, data: str, endpos: int) -> None:
    data = data.replace("\n", " ").replace("\r", " ")
    [reply] = [
        r
        for r in [ReplyParser().feed(f"200 result={result} ({data}) endpos={endpos}".encode())]
        if r
    ]
    assert (reply.kind, reply.result, reply.endpos) == (ReplyKind.SUCCESS, result, endpos)
    assert reply.data == data


@given(st.text(max_size=40))
def test_normalize_returns_e164_or_invalid_number(text: str) -> None:
    try:
        value = normalize(text)
    except InvalidNumber:
        return
    assert re.fullmatch(r"\+\d+", value)


@given(st.text(max_size=40), st.sampled_from(["", "0", "67", "32", "x"]))
def test_caller_classification_never_raises(number: str, pres: str) -> None:
    c = caller_from(number, pres)
    assert c.anonymous or c.e164 is None or c.e164.startswith("+")


@given(
    st.integers(min_value=200, max_value=999),
    st.integers(min_value=200, max_value=999),
    st.integers(min_value=0, max_value=9999),
    st.sampled_from(
        [
            "{a}{b}{c:04d}",
            "1{a}{b}{c:04d}",
            "+1 ({a}) {b}-{c:04d}",
            "{a}.{b}.{c:04d}",
            "011 1 {a} {b} {c:04d}",
            "+1{a}{b}{c:04d}",
        ]
    ),
)
def test_every_us_form_matches_its_entry(a: int, b: int, c: int, form: str) -> None:
    typed = form.format(a=a, b=b, c=c)
    entry = parse_pattern(f"+1{a}{b}{c:04d}")
    assert normalize(typed) == entry.value
    assert parse_pattern(f"{a}*").matches(normalize(typed))


_CCS = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


def _phonenumbers_e164(text: str, region: str) -> str | None:
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


@given(
    st.sampled_from(_CCS),
    st.text(alphabet="0123456789", min_size=4, max_size=14),
    st.sampled_from(["US", "GB", "DE", "IT", "AR", "MX", "RU"]),
)
def test_fast_path_agrees_with_phonenumbers(cc: int, national: str, region: str) -> None:
    text = f"+{cc}{national}"
    fast = _already_normal(text, region)
    if fast is not None:
        assert fast == _phonenumbers_e164(text, region)


@given(
    st.from_regex(r"[2-9][0-9]{9}", fullmatch=True), st.sampled_from(["US", "CA", "JM", "GB", "DE"])
)
def test_fast_path_national_nanp_agrees_with_phonenumbers(number: str, region: str) -> None:
    fast = _already_normal(number, region)
    if fast is not None:
        assert fast == _phonenumbers_e164(number, region)
    assert (fast is not None) == (region in ("US", "CA", "JM"))


@given(
    st.from_regex(r"1[0-9]{10}", fullmatch=True),
    st.sampled_from(["US", "CA", "JM", "PR", "GB", "DE"]),
)
def test_fast_path_nanp_with_national_prefix_agrees_with_phonenumbers(
    number: str, region: str
) -> None:
    fast = _already_normal(number, region)
    if fast is not None:
        assert fast == _phonenumbers_e164(number, region)
    if number[1] in "23456789" and region in ("US", "CA", "JM", "PR"):
        assert fast == "+" + number  # taken, not left to phonenumbers


_KEYS = st.sampled_from(["agi_arg_1", "agi_callerid", "agi_extension", "agi_x", "agi_arg_10"])


@given(st.lists(st.tuples(_KEYS, st.text(max_size=20)), max_size=8), _KEYS, st.binary(max_size=50))
def test_lazy_env_answers_like_the_parsed_dict(
    pairs: list[tuple[str, str]], key: str, junk: bytes
) -> None:
    block = "".join(f"{k}: {v}\n" for k, v in pairs).encode() + junk
    lazy, parsed = AgiEnv(block), parse_env(block)
    assert lazy.get(key) == parsed.get(key)
    assert dict(lazy) == parsed


@given(st.text(max_size=400), st.sampled_from(["csv", "json"]))
def test_import_reader_never_raises_but_file_error(text: str, fmt: str) -> None:
    """Any file: entries and bad rows (with where they are), or one FileError, nothing else."""
    target = Target(Scope.EXTENSION, "101", Kind.BLOCK)
    try:
        _, bad = read_entries(io.StringIO(text), fmt, target, "US")
    except FileError:
        return
    assert all(str(b).startswith(("line ", "item ")) for b in bad)


@given(
    st.lists(
        st.tuples(
            st.from_regex(r"\+1[2-9]\d{9}", fullmatch=True),
            st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20),
        ),
        max_size=20,
    )
)
def test_import_csv_reads_back_what_was_written(rows: list[tuple[str, str]]) -> None:
    """A CSV written by anyone whose notes are neutralised the way export writes them."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["number", "note"])
    w.writerows((number, inert.csv_cell(note)) for number, note in rows)
    target = Target(Scope.EXTENSION, "101", Kind.BLOCK)
    entries, bad = read_entries(io.StringIO(buf.getvalue()), "csv", target, "US")
    assert bad == []
    assert [(e.pattern.value, e.note) for e in entries] == rows


_ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))


@given(
    st.lists(
        st.tuples(
            _ANY_TEXT,
            _ANY_TEXT.map(str.strip),
            st.sampled_from(["101", "-5", "+44", "*1", "#9", ".x"]),
        ),
        max_size=12,
    )
)
def test_csv_export_reimports_exactly_any_note_raw_and_ext(
    rows: list[tuple[str, str, str]],
) -> None:
    """What `export --all` writes (formula cells neutralised) imports back as the same lists,
    and no note, raw or ext cell starts a spreadsheet formula."""
    entries = [
        ListedEntry(
            Entry(i, Scope.EXTENSION, Kind.BLOCK, f"+1303555{i:04d}", False, raw or "x", ext, note),
            0.0,
            0,
            None,
        )
        for i, (note, raw, ext) in enumerate(rows)
    ]
    buf = io.StringIO()
    writer = CsvWriter(buf, all_lists=True)
    for e in entries:
        writer.add(e)
    for row in list(csv.DictReader(io.StringIO(buf.getvalue(), newline="")))[: len(rows)]:
        assert all(row[c][:1] not in inert.FORMULA_START for c in ("note", "raw", "ext")), row
    target = Target(None, "", Kind.BLOCK, all_lists=True)
    back, bad = read_entries(io.StringIO(buf.getvalue(), newline=""), "csv", target, "US")
    assert bad == []
    assert [(n.ext, n.pattern.value, n.pattern.raw, n.note) for n in back] == [
        (e.entry.ext, e.entry.value, e.entry.raw, e.entry.note) for e in entries
    ]


_UNSAFE_OUTPUT = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff]"
)
_LOG_DB: list[Path] = []


def _cli_out(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli.main(["--db", str(_LOG_DB[0]), *args], standalone_mode=False)
    return out.getvalue()


@given(_ANY_TEXT, st.none() | _ANY_TEXT)
def test_any_caller_shows_inertly_in_log_and_round_trips_in_json(
    caller: str, name: str | None
) -> None:
    """Any caller number and name: the table holds no control or bidi character and shows the
    value literally (escaped, markup not applied); --json gives back the exact value."""
    if not _LOG_DB:
        _LOG_DB.append(Path(tempfile.mkdtemp(prefix="callscreen-prop-")) / "log.db")
    with contextlib.closing(connect(_LOG_DB[0])) as db:  # autocommit: one call per example
        db.execute("DELETE FROM call_log")
    record = CallRecord(1.8e9, "101", caller, None, "ALLOWED", "x", None, None, 0.1, None, name)

    async def write() -> None:
        async with await Store.open(_LOG_DB[0]) as store:
            await store.write_calls([record], {})

    asyncio.run(write())
    table_out = _cli_out("log")
    assert _UNSAFE_OUTPUT.search(table_out) is None
    for value in (caller, name):
        shown = inert.text(inert.bound(value)) if value else ""
        if shown.strip() and len(shown) <= 60:  # longer cells fold over lines
            assert shown.strip() in table_out
    (row,) = json.loads(_cli_out("log", "--json"))
    assert row["caller_raw"] == inert.bound(caller)
    assert row["caller_name"] == (None if name is None else inert.bound(name))
