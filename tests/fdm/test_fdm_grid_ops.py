"""The feature decomposition's per-layer image operations (OpenCV on NumPy, cupyx on CuPy)
against ``scipy.ndimage``, the reference they replace, on masks with many islands and holes,
masks touching a layer's edge, windows of larger arrays and empty layers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from slicer_energy.backend import to_numpy
from slicer_energy.fdm.grid_ops import gauss_kernel, ops_for

INPLANE = np.zeros((3, 3, 3), dtype=bool)
INPLANE[1] = True  # 8-connected within a layer, never across layers


def _stack(seed: int, shape=(7, 90, 110), smooth=2.0, fill=0.45) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = ndi.gaussian_filter(rng.random(shape), (0, smooth, smooth))
    m = f > np.quantile(f, 1 - fill)
    m[2] = m[1]  # a repeated layer
    m[3] = False  # an empty one
    m[4, 0, :] = True  # a strip along the layer's first row
    return m


MASKS = {
    "blobs": _stack(1),
    "fine": _stack(2, smooth=0.7, fill=0.5),
    "complement": ~_stack(3),  # every layer touches its border: one background each
    "window": _stack(4, shape=(5, 120, 140))[:, 9:101, 13:127],  # not contiguous
    "empty_first_rows": np.pad(_stack(5)[:, 1:-1, 1:-1], ((0, 0), (1, 1), (1, 1))),
    "long": _stack(6, shape=(5, 30, 1300)),  # distances squared in float64
}


@pytest.mark.parametrize("name", sorted(MASKS))
def test_labels_equal_scipys_in_number_and_order(xp, name):
    m = MASKS[name]
    want, n_want = ndi.label(m, structure=INPLANE)
    lab, n = ops_for(xp).label(xp.asarray(m))
    assert n == n_want > 10
    np.testing.assert_array_equal(to_numpy(lab), want)


def test_labels_of_one_layer_and_of_nothing(xp):
    ops = ops_for(xp)
    m = MASKS["blobs"][0]
    want, n_want = ndi.label(m, structure=np.ones((3, 3), dtype=bool))
    lab, n = ops.label(xp.asarray(m))
    assert n == n_want and lab.shape == m.shape
    np.testing.assert_array_equal(to_numpy(lab), want)
    lab, n = ops.label(xp.zeros((3, 0, 5), dtype=bool))
    assert n == 0 and lab.shape == (3, 0, 5)


@pytest.mark.parametrize("name", sorted(MASKS))
def test_distance_transform_equals_scipys_exact_edt(xp, name):
    """Every value the float32 rounding of SciPy's exact distance."""
    ops = ops_for(xp)
    for layer in MASKS[name]:
        got = to_numpy(ops.edt(xp.asarray(layer)))
        if layer.all():  # no empty cell: nothing is near one
            assert got.dtype == np.float32 and np.isinf(got).all()
            continue
        # bit for bit: results must not depend on the window a transform runs on
        np.testing.assert_array_equal(got, ndi.distance_transform_edt(layer).astype(np.float32))
        assert got.dtype == np.float32


@pytest.mark.parametrize("width", [790, 1410])
def test_distance_transform_exact_far_from_any_empty_cell(xp, width):
    """Rows without an empty cell, distances up to 787 cells (OpenCV, rounded) and 1407
    cells (where OpenCV drifts by a whole cell² from 885 cells on: SciPy's transform)."""
    layer = np.ones((9, width), dtype=bool)
    layer[4, 3] = False
    got = to_numpy(ops_for(xp).edt(xp.asarray(layer)))
    np.testing.assert_array_equal(got, ndi.distance_transform_edt(layer).astype(np.float32))


@pytest.mark.parametrize("mode", ["constant", "nearest"])
@pytest.mark.parametrize("sigma", [0.0, 0.4, 1.5, 3.7])
def test_blur_equals_scipys_gaussian_filter(xp, mode, sigma):
    x = MASKS["fine"].astype(np.float32) * np.linspace(0.2, 1.0, 110, dtype=np.float32)
    want = ndi.gaussian_filter(x, (0, sigma, sigma), mode=mode)
    got = to_numpy(ops_for(xp).blur(xp.asarray(x), sigma, mode=mode))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=2e-6)


@pytest.mark.parametrize("sigma", [0.9, 2.25])
def test_blur_does_not_depend_on_the_window(xp, sigma):
    """A cell's blurred value is the same bit for bit whatever window around it is blurred
    (slabs are cut into different windows), away from the window's edge."""
    ops = ops_for(xp)
    x = np.random.default_rng(8).random((1, 120, 141)).astype(np.float32)
    full = to_numpy(ops.blur(xp.asarray(x), sigma, mode="constant"))[0]
    r = gauss_kernel(sigma).size // 2
    for y0, x0, y1, x1 in ((3, 5, 100, 111), (17, 1, 119, 140), (20, 21, 80, 91)):
        win = np.zeros((3, y1 - y0, x1 - x0), dtype=np.float32)  # its last layer at another address
        win[-1] = x[0, y0:y1, x0:x1]
        got = to_numpy(ops.blur(xp.asarray(win), sigma, mode="constant"))[-1]
        np.testing.assert_array_equal(got[r:-r, r:-r], full[y0 + r : y1 - r, x0 + r : x1 - r])


def test_blur_refuses_an_unknown_mode(xp):
    with pytest.raises(ValueError, match="reflect"):
        ops_for(xp).blur(xp.zeros((1, 4, 4), dtype=xp.float32), 1.0, mode="reflect")


def test_dilation_equals_scipys_grey_dilation(xp):
    rng = np.random.default_rng(6)
    x = (rng.random((4, 50, 60)) ** 4).astype(np.float32)  # never negative, as in the model
    yy, xx = np.mgrid[-3:4, -3:4]
    fp = np.hypot(yy, xx) <= 3.2
    want = ndi.grey_dilation(x, footprint=fp[None], mode="constant")
    np.testing.assert_array_equal(to_numpy(ops_for(xp).dilate(xp.asarray(x), fp)), want)


def test_largest_value_per_label(xp):
    m = MASKS["blobs"]
    lab, n = ndi.label(m, structure=INPLANE)
    d = np.random.default_rng(7).random(m.shape).astype(np.float32)
    got = to_numpy(ops_for(xp).label_max(xp.asarray(d), xp.asarray(lab), int(n)))
    assert got[0] == 0 and got.dtype == np.float64
    np.testing.assert_array_equal(got[1:], ndi.maximum(d, lab, np.arange(1, n + 1)))
