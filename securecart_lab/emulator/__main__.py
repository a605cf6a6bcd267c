"""Entry point: `python -m securecart_lab.emulator [--host H] [--port P]`."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m securecart_lab.emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SECURECART_EMULATOR_PORT") or 4566))
    args = parser.parse_args(argv)
    # moto's Step Functions interpreter calls the server back on localhost:$MOTO_PORT: set it before moto loads.
    os.environ["MOTO_PORT"] = str(args.port)
    from securecart_lab.emulator.server import serve

    return serve(args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
