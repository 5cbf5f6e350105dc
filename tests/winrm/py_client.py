#!/usr/bin/env python3
"""Runs one command through pywinrm 0.5.0 or pypsrp 0.9.1 (NTLM, message encryption always) and
prints the outcome as one JSON line: {"rc", "stdout", "stderr"} or {"error", "message"}.
Used by tests/winrm_python_clients.rs against lyncdr's WS-Man server.

usage: py_client.py pywinrm|pypsrp HOST PORT USER PASSWORD cmd|ps|sleep ARG
  cmd:   run ARG as a cmd command line        (pywinrm run_cmd / pypsrp execute_cmd)
  ps:    run ARG as a PowerShell script       (pywinrm run_ps: -EncodedCommand, CLIXML cleaned)
  sleep: run ARG as a command line with a 1-second OperationTimeout (w:TimedOut loop)
"""
import json
import sys


def run_pywinrm(host, port, user, password, kind, arg):
    import winrm

    timeouts = {"operation_timeout_sec": 1, "read_timeout_sec": 10} if kind == "sleep" else {}
    session = winrm.Session(
        f"http://{host}:{port}/wsman",
        auth=(user, password),
        transport="ntlm",
        message_encryption="always",
        **timeouts,
    )
    if kind == "ps":
        r = session.run_ps(arg)
    else:
        r = session.run_cmd(arg)
    return {"rc": r.status_code, "stdout": r.std_out.decode(), "stderr": r.std_err.decode()}


def run_pypsrp(host, port, user, password, kind, arg):
    from pypsrp.client import Client

    extra = {"operation_timeout": 1, "read_timeout": 10} if kind == "sleep" else {}
    client = Client(
        host,
        port=port,
        username=user,
        password=password,
        ssl=False,
        auth="ntlm",
        encryption="always",
        path="wsman",
        **extra,
    )
    if kind == "ps":
        raise SystemExit("pypsrp's execute_ps speaks PSRP, which the server does not offer")
    stdout, stderr, rc = client.execute_cmd(arg)
    return {"rc": rc, "stdout": stdout, "stderr": stderr}


def main():
    client, host, port, user, password, kind, arg = sys.argv[1:8]
    runner = {"pywinrm": run_pywinrm, "pypsrp": run_pypsrp}[client]
    try:
        result = runner(host, int(port), user, password, kind, arg)
    except Exception as e:  # reported to the Rust test, which asserts on the type
        result = {"error": type(e).__name__, "message": str(e)}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
