"""The move-time functions (slicer_energy/motion.py) against closed-form profiles."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slicer_energy.fdm.time import trapezoid_s
from slicer_energy.gcode import _jit
from slicer_energy.motion import prusa_block_time, prusa_trapezoid, trapezoid_time

A = 1000.0  # mm/s²

# (d, v0, v1, vc, seconds): closed forms of the four profile shapes
CASES = [
    # trapezoid from and to rest: 1.25 mm ramps of 0.05 s, 7.5 mm cruise at 50 mm/s
    (10.0, 0.0, 0.0, 50.0, 0.05 + 7.5 / 50 + 0.05),
    # trapezoid with entry 10 and exit 20 mm/s: ramps of 1.2 mm and 1.05 mm
    (10.0, 10.0, 20.0, 50.0, 40 / A + 7.75 / 50 + 30 / A),
    # triangle from rest: the peak is sqrt(a·d), reached halfway
    (1.0, 0.0, 0.0, 100.0, 2 * math.sqrt(A * 1.0) / A),
    # triangle with entry 10 and exit 20: peak² = (2ad + v0² + v1²) / 2
    (1.0, 10.0, 20.0, 100.0, 2 * math.sqrt(1250.0) / A - 30 / A),
    # cruise only (entry = exit = cruise)
    (7.0, 35.0, 35.0, 35.0, 7.0 / 35.0),
    # nothing to move
    (0.0, 5.0, 5.0, 50.0, 0.0),
]


@pytest.mark.parametrize(("d", "v0", "v1", "vc", "t"), CASES)
def test_trapezoid_time_closed_forms(d, v0, v1, vc, t):
    got = trapezoid_time(d, A, v0 * v0, v1 * v1, vc * vc)
    assert float(got) == pytest.approx(t, rel=1e-12, abs=1e-15)


def test_trapezoid_time_arrays_are_the_scalars():
    d, v0, v1, vc, _ = (np.array(c) for c in zip(*CASES, strict=True))
    with np.errstate(divide="ignore", invalid="ignore"):
        arr = trapezoid_time(d, np.full(len(d), A), v0 * v0, v1 * v1, vc * vc)
    cols = (d, [A] * len(d), v0 * v0, v1 * v1, vc * vc)
    scal = [float(trapezoid_time(*c)) for c in zip(*cols, strict=True)]
    np.testing.assert_array_equal(arr, scal)


@pytest.mark.skipif(not _jit.available(), reason="numba not importable")
def test_trapezoid_time_compiles_to_the_same_doubles():
    import numba

    compiled = numba.njit(error_model="numpy")(trapezoid_time)
    rng = np.random.default_rng(1)
    for _ in range(200):
        d, a = rng.uniform(0, 50), rng.uniform(100, 5000)
        v0, v1, vc = rng.uniform(0, 100, 3)
        args = (d, a, v0 * v0, v1 * v1, max(vc, v0, v1) ** 2)
        assert compiled(*args) == float(trapezoid_time(*args))


def test_fdm_piece_time_is_the_planner_move_time_with_equal_ends():
    L, v, vj = np.array([0.5, 3.0, 40.0]), np.array([60.0, 60.0, 60.0]), 8.0
    np.testing.assert_array_equal(
        trapezoid_s(L, v, A, vj), trapezoid_time(L, A, vj * vj, vj * vj, v * v)
    )
    # the symmetric closed forms: L/v + (v - vj)² / (a v), and 2 (sqrt(vj² + aL) - vj) / a
    assert float(trapezoid_s(40.0, 60.0, A, vj)) == pytest.approx(40 / 60 + 52**2 / (A * 60))
    assert float(trapezoid_s(0.5, 60.0, A, vj)) == pytest.approx(2 * (math.sqrt(64 + 500) - 8) / A)


@pytest.mark.parametrize(("d", "v0", "v1", "vc", "t"), CASES[:-1])
def test_prusa_profile_and_time_closed_forms(d, v0, v1, vc, t):
    acc_until, dec_after, reached = prusa_trapezoid(A, d, v0, vc, v1)
    assert 0.0 <= acc_until <= dec_after <= d
    assert prusa_block_time(A, d, v0, acc_until, dec_after, reached) == pytest.approx(t, rel=1e-12)


def test_prusa_without_acceleration_cruises_the_whole_block():
    acc_until, dec_after, reached = prusa_trapezoid(0.0, 12.0, 5.0, 40.0, 5.0)
    assert (acc_until, dec_after, reached) == (0.0, 12.0, 40.0)
    assert prusa_block_time(0.0, 12.0, 5.0, acc_until, dec_after, reached) == 12.0 / 40.0


@pytest.mark.skipif(not _jit.available(), reason="numba not importable")
def test_prusa_kernel_helpers_are_the_same_source():
    k = pytest.importorskip("slicer_energy.gcode._kernels")
    assert k.prusa_trapezoid.py_func is prusa_trapezoid
    assert k.prusa_block_time.py_func is prusa_block_time
    args = (A, 1.0, 10.0, 100.0, 20.0)
    assert k.prusa_trapezoid(*args) == prusa_trapezoid(*args)
