"""Layers that repeat: a prismatic stretch of identical layers is measured once.

A layer's measures depend only on the layers within the slab pass's halo ``r`` of it
(:func:`.regions.measure_layers` cuts its slabs on that promise, and
``tests/fdm/test_fdm_slabs.py`` holds it), on whether it is the first layer and on whether
it lies within the shells of the plate or of the grid's top. In a run of identical layers
longer than ``2 r + 2``, every layer at least ``r + 2`` above the run's first layer and
``r`` below its last sees the same neighbours, so the same measures, as the run's layer
``r + 1``: those layers are dropped before the pass and take that layer's measures after
it. What is kept of each run is still a run ``2 r + 2`` long, its lower part at the same
layer index, so no kept layer sees anything different. A calibration cube keeps 16 of its
100 layers, the vases all of theirs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .masks import same_as_below


def kept_layers(occ: Any, r: int) -> np.ndarray | None:
    """Ascending indices of the layers of ``occ`` (``[layer, row, column]``) to measure when
    measures reach ``r`` layers; None when every layer is to be measured."""
    nz = occ.shape[0]
    if nz <= 2 * r + 2:
        return None
    start = np.flatnonzero(~same_as_below(occ))  # each run's first layer
    length = np.diff(np.append(start, nz))
    if not (length > 2 * r + 2).any():
        return None
    keep = np.ones(nz, dtype=bool)
    for a, n in zip(start[length > 2 * r + 2], length[length > 2 * r + 2], strict=True):
        keep[a + r + 2 : a + n - r] = False  # its first r + 2 and last r layers stay
    return np.flatnonzero(keep)


def expand(measures: Any, keep: np.ndarray, nz: int) -> Any:
    """``measures`` of the kept layers (a dataclass of per-layer arrays, dicts of them and
    dicts keyed by layer) for all ``nz`` layers: a dropped layer takes those of the kept
    layer below it (the run's layer ``r + 1``)."""
    src = np.searchsorted(keep, np.arange(nz), side="right") - 1
    n = keep.size

    def one(v: Any) -> Any:
        if isinstance(v, np.ndarray) and v.shape[:1] == (n,):
            return v[src]
        if isinstance(v, dict) and all(isinstance(k, str) for k in v):
            return {k: one(a) for k, a in v.items()}
        if isinstance(v, dict):  # keyed by (kept) layer
            return {k: v[int(i)] for k, i in enumerate(src) if int(i) in v}
        return v

    return dataclasses.replace(
        measures, **{f.name: one(getattr(measures, f.name)) for f in dataclasses.fields(measures)}
    )
