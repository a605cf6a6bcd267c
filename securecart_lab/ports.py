"""Ports: who holds one, and a free one for tests and bridges."""

from __future__ import annotations

import os
import socket


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_owner(port: int, host: str = "127.0.0.1") -> str | None:
    """Something listening on host:port? Returns a description ("pid 123 (python)") or "unknown", None if free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        if sock.connect_ex((host, port)) != 0:
            return None
    return _owner_from_proc(port) or "an unknown process"


def _owner_from_proc(port: int) -> str | None:
    pid = owner_pid(port)
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return f"pid {pid} ({fh.read().strip()})"
    except OSError:
        return f"pid {pid}"


def owner_pid(port: int) -> int | None:
    """The pid listening on `port` (Linux /proc), None when unknown."""
    inodes = set()
    try:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as fh:
                next(fh)
                for line in fh:
                    parts = line.split()
                    if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(parts[9])
    except OSError:
        return None
    if not inodes:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(pid)
        except OSError:
            continue
    return None
