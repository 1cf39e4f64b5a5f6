"""Course-wide settings read from the environment.

One setting scales every simulated latency, so the same notebook runs at
human speed in JupyterLab (scale 1.0) and fast under tests and grading:

>>> import os
>>> os.environ["COURSE_LATENCY_SCALE"] = "0.01"
>>> latency_scale()
0.01
>>> del os.environ["COURSE_LATENCY_SCALE"]
>>> latency_scale()
1.0
"""

from __future__ import annotations

import os

__all__ = ["LATENCY_SCALE_ENV", "latency_scale", "scaled"]

LATENCY_SCALE_ENV = "COURSE_LATENCY_SCALE"


def latency_scale() -> float:
    """Return the factor applied to every simulated latency (default 1.0).

    Raises ValueError with the offending value when the setting is not a
    non-negative number.
    """
    raw = os.environ.get(LATENCY_SCALE_ENV, "").strip()
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(
            f"{LATENCY_SCALE_ENV}={raw!r} is not a number; set it to a factor such as 1 "
            f"(real speed) or 0.01 (100x faster), or unset it"
        ) from None
    if value < 0 or value != value:
        raise ValueError(f"{LATENCY_SCALE_ENV}={raw!r} must be zero or positive")
    return value


def scaled(seconds: float) -> float:
    """Return ``seconds`` multiplied by the current latency scale."""
    if seconds < 0:
        raise ValueError(f"latency must be zero or positive, got {seconds!r} seconds")
    return seconds * latency_scale()
