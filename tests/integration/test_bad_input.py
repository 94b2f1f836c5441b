"""Garbage, early closes and slow peers: the server closes cleanly and serves the next call."""

from __future__ import annotations

import asyncio

import pytest

from callscreen.app import Server
from callscreen.db import Store
from callscreen.numbers import parse_pattern
from callscreen.policy import Kind, Scope

from .fake_asterisk import env_block, place_call


async def _healthy(port: int) -> None:
    t = await place_call(port, ext="101", callerid="+13035551212")
    assert t.apps == ["MSet", "Busy"], "the server must keep serving correctly"


@pytest.fixture(autouse=True)
async def _blocked(store: Store) -> None:
    await store.add_entries(Scope.EXTENSION, "101", Kind.BLOCK, [parse_pattern("+13035551212")])
    await store.set_extension("101", enabled=True)


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _closed_by_server(reader: asyncio.StreamReader, within: float = 3.0) -> bytes:
    """Everything the server sent until it closed; fails if it keeps the socket open."""
    return await asyncio.wait_for(reader.read(), within)


@pytest.mark.parametrize("partial", [b"", b"agi_network: yes\n", b"agi_network: y"])
async def test_peer_closes_before_the_blank_line(server: Server, port: int, partial: bytes) -> None:
    _, writer = await _connect(port)
    writer.write(partial)
    await writer.drain()
    writer.close()
    await asyncio.sleep(0.05)
    assert not server.agi or not server.agi.connections
    await _healthy(port)


async def test_no_blank_line_ever_times_out(server: Server, port: int) -> None:
    reader, writer = await _connect(port)
    writer.write(b"agi_network: yes\n")
    await writer.drain()
    assert await _closed_by_server(reader, within=3.0) == b""  # header_timeout is 1 s here
    assert server.agi is not None and server.agi.stats.bad_header >= 1
    await _healthy(port)


async def test_huge_environment_block_is_refused(server: Server, port: int) -> None:
    reader, writer = await _connect(port)
    writer.write(b"agi_x: " + b"A" * (70 * 1024))
    await writer.drain()
    assert await _closed_by_server(reader) == b""
    await _healthy(port)


async def test_invalid_utf8_and_a_forged_argument_line(port: int) -> None:
    env = env_block(port=port, ext="101", callerid="+13035551212", calleridname="Jos\xe9")
    # A truncated multibyte name, carrying a line that names another extension (999: no
    # blocking): the real agi_arg_1, written after the name, decides.
    env = env.replace("Jos\xe9".encode(), b"Jos\xc3\nagi_arg_1: 999")
    t = await place_call(port, env)
    assert t.apps == ["MSet", "Busy"]  # 101 blocks this caller


@pytest.mark.parametrize(
    "reply",
    [
        b"garbage\n",
        b"\n",
        b"510 Invalid or unknown command\n",
        b"511 Command Not Permitted on a dead channel or intercept routine\n",
        b"520 Invalid command syntax.  Proper usage not available.\n",
        b"520-Invalid command syntax.  Proper usage follows:\n Usage: x\n520 End of usage.\n",
        b"HANGUP\n200 result=-1\n",
        b"HANGUP\n",
    ],
)
async def test_odd_replies_to_the_first_command(server: Server, port: int, reply: bytes) -> None:
    reader, writer = await _connect(port)
    writer.write(env_block(port=port, ext="101", callerid="+13035551212"))
    await writer.drain()
    first = await asyncio.wait_for(reader.readline(), 2)
    assert first.startswith(b"EXEC MSet")
    writer.write(reply)
    await writer.drain()
    rest = await _closed_by_server(reader, within=3.0)
    # Whatever came back, the server never went on to treat a caller it cannot talk to,
    # except after a plain-but-odd success (none here) -- and it always closed.
    assert b"EXEC Busy" not in rest or reply.startswith(b"HANGUP\n200")
    writer.close()
    await _healthy(port)


async def test_eof_in_the_middle_of_a_reply(port: int) -> None:
    reader, writer = await _connect(port)
    writer.write(env_block(port=port, ext="101", callerid="+13035551212"))
    await writer.drain()
    await reader.readline()
    writer.write(b"200 res")
    writer.close()
    await asyncio.sleep(0.05)
    await _healthy(port)


async def test_reply_split_across_many_segments(port: int) -> None:
    reader, writer = await _connect(port)
    env = env_block(port=port, ext="101", callerid="+13035551212")
    for i in range(0, len(env), 7):  # the environment block in 7-byte pieces
        writer.write(env[i : i + 7])
        await writer.drain()
        await asyncio.sleep(0)
    assert (await reader.readline()).startswith(b"EXEC MSet")
    for ch in b"200 result=0\n":
        writer.write(bytes([ch]))
        await writer.drain()
        await asyncio.sleep(0.001)
    assert await asyncio.wait_for(reader.readline(), 2) == b"EXEC Busy\n"
    writer.write(b"200 result=-1\n")
    await writer.drain()
    assert await _closed_by_server(reader) == b""


async def test_connections_beyond_the_cap_are_refused(config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config.max_connections = 2
    config.header_timeout = 5.0
    srv = Server(config)
    await srv.start()
    port = srv.addresses[0][1]
    try:
        idle = [await _connect(port) for _ in range(2)]
        await asyncio.sleep(0.05)
        reader, _ = await _connect(port)
        assert await _closed_by_server(reader) == b""
        assert srv.agi is not None and srv.agi.stats.refused_cap == 1
        for _, w in idle:
            w.close()
        await asyncio.sleep(0.05)
        t = await place_call(port, ext="555", callerid="+13035551212")
        assert t.closed_by_server
    finally:
        await srv.stop()


async def test_allow_from_refuses_other_addresses(config) -> None:  # type: ignore[no-untyped-def]
    from callscreen.fastagi import parse_networks

    config.allow_from = parse_networks(["192.0.2.0/24"])
    srv = Server(config)
    await srv.start()
    try:
        reader, writer = await _connect(srv.addresses[0][1])
        writer.write(env_block())
        await writer.drain()
        assert await _closed_by_server(reader) == b""  # nothing sent: refused before reading
        assert srv.agi is not None and srv.agi.stats.refused_address == 1
    finally:
        await srv.stop()
