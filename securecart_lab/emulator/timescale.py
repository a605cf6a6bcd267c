"""SECURECART_TIME_SCALE: multiplies Step Functions waits and retry intervals so long workflows check in seconds."""

from __future__ import annotations

import os


def scale() -> float:
    """The factor (default 1.0); read each time so the value in force is the process's environment."""
    raw = os.environ.get("SECURECART_TIME_SCALE") or "1"
    try:
        value = float(raw)
    except ValueError:
        return 1.0
    return value if value > 0 else 1.0


def scaled(seconds: float) -> float:
    return max(0.0, float(seconds)) * scale()
