"""Statistics of timings, shared by the bench and the peers."""
from __future__ import annotations

import statistics


def stats(values: list[float]) -> dict:
    """Median, min, max and count of a list of timings (empty list: all None, runs 0)."""
    if not values:
        return {"median": None, "min": None, "max": None, "runs": 0}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


def ratio(value: float | None, floor: float | None) -> float | None:
    if value is None or not floor:
        return None
    return value / floor
