"""`python -m securecart_lab.emulator.bridges.instance`: one EC2 instance's app process.

It runs the SecureCart app (`python -m securecart_lab.app`) and stops it when the emulator that started it is
gone: the emulator holds the write end of a pipe whose read end (fd SECURECART_LIFELINE_FD) this process watches.
The pipe reaches end-of-file however the emulator ends, even by SIGKILL, so no app outlives a crashed emulator.
"""

from __future__ import annotations

import os
import runpy
import signal
import threading

LIFELINE_ENV = "SECURECART_LIFELINE_FD"
GRACE_SECONDS = 5.0


def _watch(fd: int) -> None:
    while os.read(fd, 1):
        pass
    os.kill(os.getpid(), signal.SIGTERM)  # the app's own graceful stop
    timer = threading.Timer(GRACE_SECONDS, os._exit, args=(1,))
    timer.daemon = True
    timer.start()


def main() -> None:
    fd = os.environ.pop(LIFELINE_ENV, None)
    if fd is not None:
        threading.Thread(target=_watch, args=(int(fd),), name="lifeline", daemon=True).start()
    runpy.run_module("securecart_lab.app", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
