"""`python -m securecart_lab.app`: serve the SecureCart app as configured by the environment."""

from __future__ import annotations

import sys

from securecart_lab.app import AppConfig, serve
from securecart_lab.errors import LabError


def main() -> int:
    try:
        serve(AppConfig.from_env())
    except LabError as error:
        print(f"error: {error.message}", file=sys.stderr)
        if error.hint:
            print(f"hint: {error.hint}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
