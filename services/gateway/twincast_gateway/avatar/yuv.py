"""RGB to the encoder's yuv420p (BT.601, limited range), for precomputing only: never per frame."""

from __future__ import annotations

import av
import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]


def rgb_to_i420(rgb: U8) -> U8:
    """An I420 array (h*3//2, w) of an RGB image with even sides, as swscale converts it."""
    height, width = rgb.shape[:2]
    if height % 2 or width % 2:
        raise ValueError(f"yuv420p needs even sides, got {width}x{height}")
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return np.ascontiguousarray(frame.reformat(format="yuv420p").to_ndarray(), dtype=np.uint8)


def split_i420(i420: U8) -> tuple[U8, U8, U8]:
    """Views of the Y, U and V planes of an I420 array."""
    height = i420.shape[0] * 2 // 3
    width = i420.shape[1]
    quarter = height * width // 4
    chroma = i420[height:].reshape(-1)
    y = i420[:height]
    u = chroma[:quarter].reshape(height // 2, width // 2)
    v = chroma[quarter:].reshape(height // 2, width // 2)
    return y, u, v


def rgb_to_yuv(r: float, g: float, b: float) -> tuple[float, float, float]:
    """One colour in BT.601 limited range (what the planes of `rgb_to_i420` hold)."""
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return y, u, v
