#!/usr/bin/env python3
"""NTLM peer for tests/winrm_ntlm_interop.rs: pyspnego as the initiator or the acceptor.

Tokens and sealed messages travel as lines of space-separated base64 fields on stdin/stdout:
`TOKEN <t>`, `SEALED <header> <data>`, `PLAIN <bytes>`; the acceptor also answers `OK` or
`DENIED <reason>` after the AUTHENTICATE message. Sealing is pyspnego's wrap_winrm/unwrap_winrm,
i.e. exactly what pywinrm and pypsrp put on the wire.

usage: ntlm_peer.py initiate USER PASSWORD ROUNDS   (reads the server's answers from stdin)
       ntlm_peer.py accept ROUNDS                   (users from $NTLM_USER_FILE, DOMAIN:USER:PASSWORD)
"""
import base64
import sys

import spnego


def send(kind, *parts):
    print(kind, *[base64.b64encode(p).decode() for p in parts], flush=True)


def recv(expect):
    line = sys.stdin.readline().split()
    if not line or line[0] != expect:
        raise SystemExit(f"expected {expect}, got {line!r}")
    return [base64.b64decode(p) for p in line[1:]]


def initiate(user, password, rounds):
    ctx = spnego.client(user, password, hostname="localhost", service="HTTP", protocol="ntlm")
    send("TOKEN", ctx.step())
    (challenge,) = recv("TOKEN")
    send("TOKEN", ctx.step(challenge))
    verdict = sys.stdin.readline().strip()
    if verdict != "OK":
        return
    for i in range(rounds):
        msg = f"<request n='{i}'>héllo from pyspnego {'x' * i * 37}</request>".encode()
        wrapped = ctx.wrap_winrm(msg)
        send("SEALED", wrapped.header, wrapped.data)
        header, data = recv("SEALED")
        send("PLAIN", ctx.unwrap_winrm(header, data))


def accept(rounds):
    ctx = spnego.server(protocol="ntlm")
    (negotiate,) = recv("TOKEN")
    send("TOKEN", ctx.step(negotiate))
    (authenticate,) = recv("TOKEN")
    try:
        ctx.step(authenticate)
    except Exception as e:  # wrong password or unknown user
        print("DENIED", type(e).__name__, flush=True)
        return
    print("OK", flush=True)
    for _ in range(rounds):
        header, data = recv("SEALED")
        plain = ctx.unwrap_winrm(header, data)
        wrapped = ctx.wrap_winrm(b"echo:" + plain)
        send("SEALED", wrapped.header, wrapped.data)


if __name__ == "__main__":
    if sys.argv[1] == "initiate":
        initiate(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1] == "accept":
        accept(int(sys.argv[2]))
    else:
        raise SystemExit(__doc__)
