"""Writes the awkward clips docs/benchmarks.md ("Real footage at scale") measures the streaming
data layer on: a 10-minute clip (seeking), a variable-frame-rate clip, a portrait clip.

    python3 -m venv /tmp/pv && /tmp/pv/bin/pip install -r scripts/reference/requirements-clips.txt
    /tmp/pv/bin/python scripts/reference/odd_clips.py OUT_DIR

Every frame's blue channel is (frame number * 7) % 256, so a window's position in the clip can
be read back from its pixels.
"""
import fractions
import os
import sys

import av
import numpy as np


def write(path, n, w, h, rate, pts=None):
    c = av.open(path, "w")
    s = c.add_stream("libx264", rate=rate)
    s.width, s.height, s.pix_fmt = w, h, "yuv420p"
    if pts is not None:
        s.codec_context.time_base = fractions.Fraction(1, 1000)
    s.options = {"g": "50"}
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        img[..., 0] = (np.arange(w)[None, :] * 2 + i * 3) % 256
        img[..., 1] = (np.arange(h)[:, None] * 3) % 256
        img[..., 2] = (i * 7) % 256
        f = av.VideoFrame.from_ndarray(img, format="rgb24")
        if pts is not None:
            f.pts, f.time_base = int(pts[i]), fractions.Fraction(1, 1000)
        for p in s.encode(f):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()


out = sys.argv[1]
os.makedirs(out, exist_ok=True)
write(os.path.join(out, "long.mp4"), 25 * 600, 160, 120, 25)
gaps = np.random.default_rng(0).integers(20, 121, 300)  # milliseconds between frames
t = np.cumsum(gaps)
write(os.path.join(out, "vfr.mp4"), 300, 160, 120, 25, t - t[0])
write(os.path.join(out, "portrait.mp4"), 100, 90, 160, 25)
