#!/usr/bin/env python3
"""Hostile and careless NBD clients for msrswap_hostile.bats, speaking the
wire format of the NBD protocol (doc/proto.md) with raw sockets, so that
nothing between the test and the server validates anything.

  cmd SOCK EXPORT TYPE:FLAGS:OFFSET:LENGTH...  one request each, prints the
                                               reply's error numbers
  hold SOCK EXPORT N                           N negotiated idle connections;
                                               prints "held K", then waits
                                               for stdin to close
  linger SOCK EXPORT MIB                       writes MIB MiB, prints "written",
                                               waits for a line on stdin, then
                                               prints the errors of a read and
                                               a write
  drip SOCK (options SECONDS | bytes SECONDS)  a handshake that never ends:
                                               an unknown option, or one byte,
                                               every SECONDS; prints how long
                                               the server took to hang up
"""
import select
import socket
import struct
import sys
import time

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x0003E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY = 0x67446698
OPT_GO = 7
REP_ACK = 1


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError("server closed the connection")
        data += chunk
    return data


def connect(path, timeout):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def hello(s):
    magic, opt_magic, _flags = struct.unpack(">QQH", recv_exact(s, 18))
    assert magic == NBDMAGIC and opt_magic == IHAVEOPT, "not a fixed-newstyle server"
    s.sendall(struct.pack(">I", 3))  # FIXED_NEWSTYLE | NO_ZEROES


def go(s, export):
    name = export.encode()
    data = struct.pack(">I", len(name)) + name + struct.pack(">H", 0)
    s.sendall(struct.pack(">QII", IHAVEOPT, OPT_GO, len(data)) + data)
    while True:
        magic, _opt, rtype, length = struct.unpack(">QIII", recv_exact(s, 20))
        assert magic == REPLY_MAGIC
        recv_exact(s, length)
        if rtype == REP_ACK:
            return
        if rtype & 0x80000000:
            raise RuntimeError("NBD_OPT_GO refused: 0x%x" % rtype)


def negotiated(path, export, timeout=5.0):
    s = connect(path, timeout)
    hello(s)
    go(s, export)
    return s


def cmd(path, export, requests):
    s = negotiated(path, export)
    errors = []
    for i, text in enumerate(requests):
        rtype, flags, offset, length = (int(x, 0) for x in text.split(":"))
        head = struct.pack(">IHHQQI", REQUEST_MAGIC, flags, rtype, i, offset, length)
        s.sendall(head + (bytes(length) if rtype == 1 else b""))
        magic, error, cookie = struct.unpack(">IIQ", recv_exact(s, 16))
        assert magic == SIMPLE_REPLY and cookie == i, "bad reply"
        if rtype == 0 and error == 0:
            recv_exact(s, length)
        errors.append(str(error))
    print(" ".join(errors))


def request(s, rtype, offset, length, payload=b""):
    s.sendall(struct.pack(">IHHQQI", REQUEST_MAGIC, 0, rtype, 7, offset, length) + payload)
    magic, error, _cookie = struct.unpack(">IIQ", recv_exact(s, 16))
    assert magic == SIMPLE_REPLY, "bad reply"
    if rtype == 0 and error == 0:
        recv_exact(s, length)
    return error


def linger(path, export, mib):
    """Write MIB MiB, say so, wait for a line on stdin, then read: print that error."""
    s = negotiated(path, export)
    for i in range(mib):
        assert request(s, 1, i << 20, 1 << 20, b"\xaa" * (1 << 20)) == 0, "write failed"
    print("written", flush=True)
    sys.stdin.readline()
    print("read %d write %d" % (request(s, 0, 0, 4096), request(s, 1, 0, 4096, bytes(4096))), flush=True)


def hold(path, export, n):
    held = []
    for _ in range(n):
        try:
            held.append(negotiated(path, export, timeout=2.0))
        except (OSError, EOFError, RuntimeError):
            break
    print("held %d" % len(held), flush=True)
    sys.stdin.read()


def pause(s, seconds):
    """Sleep, but end at once (EOFError) if the server hangs up meanwhile."""
    readable, _, _ = select.select([s], [], [], seconds)
    if readable and not s.recv(1, socket.MSG_PEEK):
        raise EOFError("server closed the connection")


def drip(path, mode, interval):
    s = connect(path, 120.0)
    start = time.monotonic()
    try:
        hello(s)
        option = struct.pack(">QII", IHAVEOPT, 0x7777, 0)  # unknown: answered NBD_REP_ERR_UNSUP
        while time.monotonic() - start < 30:  # a server that never hangs up fails the test, not hangs it
            if mode == "options":
                s.sendall(option)
            else:
                for byte in option:
                    s.sendall(bytes([byte]))
                    pause(s, interval)
            _m, _o, _t, length = struct.unpack(">QIII", recv_exact(s, 20))
            recv_exact(s, length)
            if mode == "options":
                pause(s, interval)
    except (OSError, EOFError):
        pass
    print("%.1f" % (time.monotonic() - start))


def main(argv):
    if argv[1] == "cmd":
        cmd(argv[2], argv[3], argv[4:])
    elif argv[1] == "hold":
        hold(argv[2], argv[3], int(argv[4]))
    elif argv[1] == "linger":
        linger(argv[2], argv[3], int(argv[4]))
    elif argv[1] == "drip":
        drip(argv[2], argv[3], float(argv[4]))
    else:
        sys.exit("unknown mode " + argv[1])


if __name__ == "__main__":
    main(sys.argv)
