"""Process-wide logging. Personal data (transcripts, replies, corpus text) only at DEBUG."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str, *, service: str) -> logging.Logger:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # faster-whisper reports every clip at INFO.
    logging.getLogger("faster_whisper").setLevel(max(logging.WARNING, root.level))
    return logging.getLogger(f"twincast.{service}")
