"""A minimal SIP caller over raw UDP: one INVITE with a From header of our choosing, as an
attacker would send it, and the ACK that ends the transaction.

Only what the hostile-caller tests need (RFC 3261 17.1.1: an INVITE client transaction that
ends in a non-2xx final response, ACKed with the same branch). A 2xx (not expected: the bed's
sip-inbound context always ends in Hangup(17)) is ACKed and ended with a BYE so no call is
left up.
"""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from dataclasses import dataclass, field


@dataclass
class SipResult:
    """What came back for one INVITE."""

    final: int  # the final status code (486 Busy Here, ...), 0 if none came in time
    statuses: list[int] = field(default_factory=list)  # every status code seen, in order
    responses: list[str] = field(default_factory=list)


def _header(message: str, name: str) -> str:
    for line in message.split("\r\n")[1:]:
        if not line:
            break
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return ""


def invite(
    port: int,
    exten: str,
    from_header: str,
    *,
    host: str = "127.0.0.1",
    timeout: float = 10.0,
) -> SipResult:
    """Send ``INVITE sip:EXTEN@host:port`` with the given From header value (display name and
    URI, its tag added here), no SDP; wait for the final response and ACK it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        local = sock.getsockname()[1]
        branch = "z9hG4bK" + uuid.uuid4().hex
        tag = uuid.uuid4().hex[:10]
        call_id = uuid.uuid4().hex + "@callscreen-e2e"
        ruri = f"sip:{exten}@{host}:{port}"
        via = f"SIP/2.0/UDP {host}:{local};branch={branch};rport"
        from_value = f"{from_header};tag={tag}"
        to_value = f"<{ruri}>"
        common = f"Via: {via}\r\nMax-Forwards: 70\r\nFrom: {from_value}\r\nCall-ID: {call_id}\r\n"
        request = (
            f"INVITE {ruri} SIP/2.0\r\n{common}To: {to_value}\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:caller@{host}:{local}>\r\nContent-Length: 0\r\n\r\n"
        )
        sock.sendto(request.encode("utf-8"), (host, port))
        result = SipResult(0)
        deadline = time.monotonic() + timeout
        resend = time.monotonic() + 0.5  # Timer A: UDP may drop it
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, min(resend, deadline) - time.monotonic()))
            try:
                data, _ = sock.recvfrom(65535)
            except TimeoutError:
                if not result.statuses and time.monotonic() >= resend:
                    sock.sendto(request.encode("utf-8"), (host, port))
                    resend = time.monotonic() + 1.0
                continue
            message = data.decode("utf-8", "replace")
            if not message.startswith("SIP/2.0 "):
                continue  # a request from Asterisk: not expected here
            if "INVITE" not in _header(message, "CSeq"):
                continue
            status = int(message.split(" ", 2)[1])
            result.statuses.append(status)
            result.responses.append(message)
            if status < 200:
                continue
            result.final = status
            to_tagged = _header(message, "To") or to_value
            if status >= 300:  # same transaction: same branch and CSeq number
                ack = (
                    f"ACK {ruri} SIP/2.0\r\n{common}To: {to_tagged}\r\nCSeq: 1 ACK\r\n"
                    "Content-Length: 0\r\n\r\n"
                )
                sock.sendto(ack.encode("utf-8"), (host, port))
            else:  # a dialog was set up after all: ACK (new branch), then hang up
                target = _header(message, "Contact").strip("<>") or ruri
                for n, method in ((1, "ACK"), (2, "BYE")):
                    new_via = f"SIP/2.0/UDP {host}:{local};branch=z9hG4bK{uuid.uuid4().hex};rport"
                    req = (
                        f"{method} {target} SIP/2.0\r\nVia: {new_via}\r\nMax-Forwards: 70\r\n"
                        f"From: {from_value}\r\nCall-ID: {call_id}\r\nTo: {to_tagged}\r\n"
                        f"CSeq: {n} {method}\r\nContent-Length: 0\r\n\r\n"
                    )
                    sock.sendto(req.encode("utf-8"), (host, port))
                with contextlib.suppress(OSError):  # the BYE's 200 OK: not waited for long
                    sock.settimeout(1.0)
                    sock.recvfrom(65535)
            return result
        return result
