"""Keep the garbage collector off the hot path of a long-running service."""

from __future__ import annotations

import gc


def settle() -> None:
    """Once loaded: move everything alive now (models, modules, settings) out of the collector.

    A full collection walks every object in the oldest generation; after loading models that
    is millions of objects and milliseconds of pause, landing on whichever message is being
    handled. Frozen objects are never walked again; what the service allocates later still is.
    """
    gc.collect()
    gc.freeze()
