"""A private network namespace with only loopback, for tests and benchmarks of WebRTC.

Browsers offer ICE candidates on every interface, and a pair on a LAN address can win even
on one host; inside this namespace there is nothing but 127.0.0.1 to choose from.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def enter_loopback_only_namespace() -> str | None:
    """Moves this process (and its future children) into a new network namespace with `lo` up.

    Returns None on success, or why it could not (not root, no namespaces in this container).
    Call it before any thread or socket exists: it changes the network of the whole process.
    """
    if os.geteuid() != 0:
        return "not running as root"
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        return f"unshare(CLONE_NEWNET) failed: {os.strerror(ctypes.get_errno())}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))
    return None
