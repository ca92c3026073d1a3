"""The per-layer image operations of the feature decomposition, for the array module in use.

The model asks five things of a ``[layer, row, column]`` grid, never across layers:
components (8-connected within a layer), the exact Euclidean distance transform of one
layer, an in-plane Gaussian blur, an in-plane grey dilation and the largest value per
label. :func:`ops_for` gives them for NumPy (:class:`CpuOps`, OpenCV) or CuPy
(:class:`GpuOps`, ``cupyx.scipy.ndimage``); the model itself is one code path.

Why OpenCV on the CPU and not ``scipy.ndimage``: it imports in about 15 ms where
``scipy.ndimage`` takes about 150 ms (its array-API layer parses every docstring at import),
its exact distance transform runs about 3x faster than SciPy's and its labelling about 1.5x,
and it releases the GIL, so slabs still run in parallel. Both give SciPy's results (see
``tests/fdm/test_fdm_grid_ops.py``, which checks them against ``scipy.ndimage``): the same
labels in the same raster order, the float32 rounding of the exact distances, the same
blur to float32 rounding (SciPy's kernel, summed in float64), the same dilation. None
depends on the window it runs on, so where slabs are cut changes no result.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Protocol

import numpy as np

# scipy.ndimage.gaussian_filter's default: the kernel reaches 4 standard deviations.
GAUSS_TRUNCATE = 4.0
BLUR_MODES = ("constant", "nearest")  # zero beyond the layer, or its edge cell repeated
# Squared distances (cells², whole numbers D) up to which OpenCV's float32 distance, squared
# in float32, lies within 0.15 of D (measured: ≤ 0.1 below 783 225 = 885², where it jumps to
# 1 on rows or columns without an empty cell), so that rounding recovers D exactly. A window
# with farther distances (800 cells: 80 mm of solid on 0.1 mm cells, which the cell budget
# makes rare) takes SciPy's exact transform instead.
OPENCV_EXACT_D2 = 640_000


class GridOps(Protocol):
    """What :mod:`.regions`, :mod:`.masks`, :mod:`.shells`, :mod:`.arachne` and
    :mod:`.supports` use."""

    def label(self, mask: Any) -> tuple[Any, int]:
        """Components of a ``[layer, row, column]`` bool mask, 8-connected within each layer
        and never across layers, numbered ``1..n`` in raster order (layer by layer); 0 where
        there is no cell."""

    def edt(self, mask: Any) -> Any:
        """Per cell of a 2-D bool mask, the distance (in cells, float32) from its centre to
        the nearest empty cell's centre; 0 on empty cells, infinite everywhere where the
        mask has no empty cell."""

    def blur(self, x: Any, sigma_cells: float, mode: str) -> Any:
        """Each layer of a float32 ``[layer, row, column]`` array blurred in-plane by a
        Gaussian of ``sigma_cells`` (none: a copy); ``mode`` (:data:`BLUR_MODES`) says what
        lies beyond."""

    def dilate(self, x: Any, footprint: np.ndarray) -> Any:
        """Each layer's largest value over the 2-D bool ``footprint`` (odd, symmetric)
        around every cell; values beyond the layer do not count (``x`` is never negative
        where this is used)."""

    def label_max(self, d: Any, lab: Any, n: int) -> Any:
        """Largest ``d`` of each label ``1..n`` as float64, index 0 holding 0."""


def ops_for(xp: ModuleType) -> GridOps:
    """The operations for ``xp``: :class:`GpuOps` for CuPy, :class:`CpuOps` otherwise."""
    return GpuOps() if xp.__name__.startswith("cupy") else CpuOps()


def gauss_kernel(sigma_cells: float) -> np.ndarray:
    """The normalised 1-D Gaussian (float64) of ``scipy.ndimage.gaussian_filter``: its
    radius ``int(truncate * sigma + 0.5)`` cells."""
    r = int(GAUSS_TRUNCATE * float(sigma_cells) + 0.5)
    w = np.exp(-0.5 * (np.arange(-r, r + 1) / float(sigma_cells)) ** 2)
    return w / w.sum()


class CpuOps:
    """NumPy arrays, OpenCV kernels: one 2-D call per layer (the transforms, blur and
    dilation) or one call for the whole stack (the labels)."""

    def __init__(self) -> None:
        import cv2  # imported here: only the feature decomposition needs it

        self.cv2 = cv2

    def label(self, mask: np.ndarray) -> tuple[np.ndarray, int]:
        cv2 = self.cv2
        m = mask[None] if mask.ndim == 2 else mask
        nz, ny, nx = m.shape
        # The layers stacked as one image's rows, an empty row between them so that no
        # component spans two; SAUF (Wu's scan) numbers components in raster order, as SciPy.
        if m.flags.c_contiguous and ny > 0 and not m[:, 0, :].any():
            img, pad = m.reshape(nz * ny, nx).view(np.uint8), 0
        else:
            buf = np.zeros((nz, ny + 1, nx), dtype=np.uint8)
            buf[:, 1:] = m
            img, pad = buf.reshape(nz * (ny + 1), nx), 1
        if img.size == 0:
            return np.zeros(m.shape, dtype=np.int32).reshape(mask.shape), 0
        n, lab = cv2.connectedComponentsWithAlgorithm(img, 8, cv2.CV_32S, cv2.CCL_SAUF)
        lab = lab.reshape(nz, ny + pad, nx)[:, pad:]
        return lab.reshape(mask.shape), int(n) - 1

    def edt(self, mask: np.ndarray) -> np.ndarray:
        cv2 = self.cv2
        if mask.size == 0 or mask.all():
            return np.full(mask.shape, np.inf, dtype=np.float32)
        d = cv2.distanceTransform(mask.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        # OpenCV's float32 result is a unit or so in the last place off on a few cells, and
        # which cells depends on the window it runs on; the squared distance is a whole
        # number, so rounding it and taking the root again gives SciPy's values everywhere,
        # and results that do not depend on where slabs are cut.
        far = float(d.max())
        if far * far > OPENCV_EXACT_D2:
            from scipy.ndimage import distance_transform_edt  # ~0.15 s, for such windows only

            return distance_transform_edt(mask).astype(np.float32)
        np.multiply(d, d, out=d)
        np.rint(d, out=d)
        return np.sqrt(d, out=d)

    def blur(self, x: np.ndarray, sigma_cells: float, mode: str) -> np.ndarray:
        cv2 = self.cv2
        border = _border(cv2, mode)
        if sigma_cells <= 0:
            return x.copy()
        kernel = gauss_kernel(sigma_cells)
        out = np.empty_like(x)
        for k in range(x.shape[0]):
            # Summed in float64: OpenCV's float32 filters round differently on some cells
            # depending on the window (vector lanes against the scalar tail), which would
            # make results depend on where slabs are cut.
            out[k] = cv2.sepFilter2D(x[k], cv2.CV_64F, kernel, kernel, borderType=border)
        return out

    def dilate(self, x: np.ndarray, footprint: np.ndarray) -> np.ndarray:
        kernel = np.ascontiguousarray(footprint, dtype=np.uint8)
        out = np.empty_like(x)
        for k in range(x.shape[0]):
            out[k] = self.cv2.dilate(x[k], kernel)
        return out

    def label_max(self, d: np.ndarray, lab: np.ndarray, n: int) -> np.ndarray:
        r = np.zeros(n + 1, dtype=np.float64)
        sel = lab > 0
        np.maximum.at(r, lab[sel], d[sel].astype(np.float64))  # ndimage.maximum sorts: slower
        return r


def _border(cv2: Any, mode: str) -> int:
    if mode not in BLUR_MODES:
        raise ValueError(f"blur mode {mode!r} is not one of {BLUR_MODES}")
    return cv2.BORDER_CONSTANT if mode == "constant" else cv2.BORDER_REPLICATE


class GpuOps:
    """CuPy arrays, ``cupyx.scipy.ndimage`` kernels on the whole slab at once."""

    def __init__(self) -> None:
        import cupy as cp
        import cupyx.scipy.ndimage as ndi

        self.cp, self.ndi = cp, ndi
        st = np.zeros((3, 3, 3), dtype=bool)
        st[1] = True  # 8-connected within a layer, never across layers
        self.inplane = cp.asarray(st)

    def label(self, mask: Any) -> tuple[Any, int]:
        m = mask[None] if mask.ndim == 2 else mask
        lab, n = self.ndi.label(m, structure=self.inplane)
        return lab.reshape(mask.shape), int(n)

    def edt(self, mask: Any) -> Any:
        # From the feature transform: the squared distances are whole numbers, summed in
        # int32 rather than in float64 arrays.
        cp = self.cp
        if mask.size == 0 or bool(mask.all()):
            return cp.full(mask.shape, cp.inf, dtype=cp.float32)
        ft = self.ndi.distance_transform_edt(mask, return_distances=False, return_indices=True)
        ft = ft.astype(cp.int32, copy=False)  # CuPy may return narrower indices
        dy = ft[0] - cp.arange(mask.shape[0], dtype=ft.dtype)[:, None]
        dx = ft[1] - cp.arange(mask.shape[1], dtype=ft.dtype)
        dy *= dy
        dx *= dx
        dy += dx
        return cp.sqrt(dy.astype(cp.float64)).astype(cp.float32)

    def blur(self, x: Any, sigma_cells: float, mode: str) -> Any:
        if mode not in BLUR_MODES:
            raise ValueError(f"blur mode {mode!r} is not one of {BLUR_MODES}")
        if sigma_cells <= 0:
            return x.copy()
        sig = (0.0, sigma_cells, sigma_cells)
        x64 = x.astype(self.cp.float64)  # summed in float64, as on the CPU
        return self.ndi.gaussian_filter(x64, sig, mode=mode, truncate=GAUSS_TRUNCATE).astype(
            x.dtype
        )

    def dilate(self, x: Any, footprint: np.ndarray) -> Any:
        fp = self.cp.asarray(footprint[None])
        return self.ndi.grey_dilation(x, footprint=fp, mode="constant")

    def label_max(self, d: Any, lab: Any, n: int) -> Any:
        cp = self.cp
        r = cp.zeros(n + 1, dtype=cp.float64)
        r[1:] = cp.asarray(self.ndi.maximum(d, lab, cp.arange(1, n + 1)), dtype=cp.float64)
        return r
