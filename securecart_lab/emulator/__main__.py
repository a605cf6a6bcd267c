"""Entry point: `python -m securecart_lab.emulator [--host H] [--port P]`."""

from __future__ import annotations

import argparse
import logging
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m securecart_lab.emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SECURECART_EMULATOR_PORT") or 4566))
    args = parser.parse_args(argv)
    # moto's Step Functions interpreter calls the server back on localhost:$MOTO_PORT: set it before moto loads.
    os.environ["MOTO_PORT"] = str(args.port)
    from securecart_lab.emulator import startup

    startup.defer_imports()
    from securecart_lab.emulator.server import serve

    return serve(args.host, args.port)


if __name__ == "__main__":
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # serve() stopped the workers, app processes and bridges: skip tearing down moto's modules and objects one by
    # one at interpreter exit, which took most of a second.
    os._exit(code)
