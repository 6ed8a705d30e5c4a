"""The one percentile every benchmark reports."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def percentile(values: Iterable[float], q: float) -> float:
    """The `q`th percentile (0 to 100), linear between the two nearest ranks.

    numpy's default and `statistics.quantiles(method="inclusive")`: the definition behind every
    figure in docs/benchmarks.md. Raises ValueError for no values.
    """
    data = np.fromiter(values, dtype=np.float64)
    if data.size == 0:
        raise ValueError("no values")
    return float(np.percentile(data, q))
