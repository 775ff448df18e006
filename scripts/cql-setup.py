#!/usr/bin/env python3
"""Minimal CQL native protocol v4 client for scripts/test-servers.sh.

Waits until a Cassandra node accepts a login on its native port, then runs
the given CQL statements one by one (each must succeed). Standard library
only, so the test-server script needs no driver; ferry's own driver lives in
src/drivers/cql/.

  cql-setup.py --port N --user U --password-env VAR --wait SECONDS [CQL ...]

The password is read from the environment variable VAR, never from argv.
Exit 0 on success; 1 with a message on stderr otherwise.
"""
import argparse
import os
import socket
import struct
import sys
import time

VERSION = 0x04
OP_ERROR, OP_STARTUP, OP_READY, OP_AUTHENTICATE = 0x00, 0x01, 0x02, 0x03
OP_QUERY, OP_RESULT, OP_AUTH_RESPONSE, OP_AUTH_SUCCESS = 0x07, 0x08, 0x0F, 0x10
CONSISTENCY_ONE = 0x0001


class CqlError(Exception):
    pass


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by the server")
        buf += chunk
    return buf


def request(sock, opcode, body, stream=1):
    sock.sendall(struct.pack(">BBhBi", VERSION, 0, stream, opcode, len(body)) + body)
    _, _, _, op, length = struct.unpack(">BBhBi", read_exact(sock, 9))
    payload = read_exact(sock, length)
    if op == OP_ERROR:
        code, msg_len = struct.unpack(">iH", payload[:6])
        raise CqlError("server error 0x%04x: %s" % (code, payload[6:6 + msg_len].decode("utf-8", "replace")))
    return op, payload


def string_map(pairs):
    out = struct.pack(">H", len(pairs))
    for k, v in pairs.items():
        for s in (k, v):
            b = s.encode()
            out += struct.pack(">H", len(b)) + b
    return out


def login(port, user, password, timeout, host="127.0.0.1"):
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        op, _ = request(sock, OP_STARTUP, string_map({"CQL_VERSION": "3.0.0"}))
        if op == OP_AUTHENTICATE:
            token = b"\0" + user.encode() + b"\0" + password.encode()
            op, _ = request(sock, OP_AUTH_RESPONSE, struct.pack(">i", len(token)) + token)
            if op != OP_AUTH_SUCCESS:
                raise CqlError("unexpected opcode 0x%02x after AUTH_RESPONSE" % op)
        elif op != OP_READY:
            raise CqlError("unexpected opcode 0x%02x after STARTUP" % op)
        return sock
    except Exception:
        sock.close()
        raise


def query(sock, cql):
    body = cql.encode()
    request(sock, OP_QUERY, struct.pack(">i", len(body)) + body + struct.pack(">HB", CONSISTENCY_ONE, 0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password-env", required=True)
    ap.add_argument("--wait", type=float, default=120)
    ap.add_argument("--pid", type=int, default=0, help="give up when this process exits")
    ap.add_argument("cql", nargs="*")
    args = ap.parse_args()
    password = os.environ.get(args.password_env, "")
    deadline = time.monotonic() + args.wait
    last = "no attempt"
    while True:
        try:
            sock = login(args.port, args.user, password, 10, args.host)
            break
        except (OSError, CqlError) as e:
            last = str(e)
        if args.pid and not os.path.exists("/proc/%d" % args.pid):
            sys.exit("cql-setup: the server process %d exited (last error: %s)" % (args.pid, last))
        if time.monotonic() >= deadline:
            sys.exit("cql-setup: no login on %s:%d as %s after %.0fs (last error: %s)"
                     % (args.host, args.port, args.user, args.wait, last))
        time.sleep(0.5)
    with sock:
        for cql in args.cql:
            try:
                query(sock, cql)
            except CqlError as e:
                sys.exit("cql-setup: %s\n  statement: %s" % (e, cql))


if __name__ == "__main__":
    main()
