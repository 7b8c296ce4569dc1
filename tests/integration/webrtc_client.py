"""What the WebRTC tests' aiortc viewers share."""

from __future__ import annotations

from typing import Any

import numpy as np


async def receive_frames(track: Any, count: int, size: tuple[int, int]) -> list[np.ndarray]:
    """The next ``count`` decoded frames of ``size`` (width, height), as BGR arrays."""
    frames = []
    while len(frames) < count:
        frame = await track.recv()
        if (frame.width, frame.height) == size:
            frames.append(frame.to_ndarray(format="bgr24"))
    return frames
