"""Shared fixtures: paths to ../shared, backends to test, sample parts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SLICER_ENERGY_SHARED", REPO.parent / "shared"))
CORPUS = SHARED / "corpus"


def need_shared(*parts: str) -> Path:
    """Path below ../shared, or skip the test with the reason."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} not found (../shared is not beside the checkout)")
    return p


def _backends() -> list:
    from slicer_energy.backend import cupy_available

    params = [pytest.param("numpy", id="numpy")]
    params.append(
        pytest.param(
            "cupy",
            id="cupy",
            marks=pytest.mark.skipif(not cupy_available(), reason="no CuPy / CUDA device"),
        )
    )
    return params


@pytest.fixture(params=_backends())
def xp(request):
    from slicer_energy.backend import get_xp

    return get_xp(request.param)
