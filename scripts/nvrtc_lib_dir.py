#!/usr/bin/env python3
"""Prints the folder holding libnvrtc.so from the pip packages `nvidia-cuda-nvrtc` (or the
CUDA 13 `nvidia` layout), or nothing when none is installed."""

import glob
import os

try:
    import nvidia

    roots = list(nvidia.__path__)
except ImportError:
    roots = []
for root in roots:
    hits = glob.glob(os.path.join(root, "*", "lib", "libnvrtc.so*"))
    if hits:
        print(os.path.dirname(hits[0]))
        break
