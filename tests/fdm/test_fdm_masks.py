"""The per-layer mask primitives against SciPy run layer by layer on the whole layer (the
faster paths, cropped transforms, labels' layers from per-layer maxima and shifted run
starts, must give the same numbers)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from slicer_energy.fdm.grid_ops import ops_for
from slicer_energy.fdm.masks import (
    count_holes,
    edt_layers,
    hole_components,
    label_cells,
    label_compact,
    label_layers,
    label_sums,
    layer_bounds,
    runs,
)

OPS = ops_for(np)
INPLANE = np.zeros((3, 3, 3), dtype=bool)
INPLANE[1] = True  # SciPy's structure for 8-connected within a layer, never across


def _masks() -> np.ndarray:
    rng = np.random.default_rng(1)
    m = np.zeros((6, 60, 70), dtype=bool)
    m[:, 10:40, 15:50] = rng.random((6, 30, 35)) > 0.2  # islands and holes
    m[2] = m[1]  # a repeated layer
    m[3] = False  # an empty one
    m[4, :5, :] = True  # a strip along the layer's edge
    return m


def test_cropped_distance_transform_equals_the_whole_layers():
    m = _masks()
    ref = np.stack([ndi.distance_transform_edt(layer) for layer in m]) * 0.3 - 0.15
    np.testing.assert_allclose(edt_layers(OPS, np, m, 0.3), ref, atol=1e-5)


def test_component_and_hole_counts_per_layer():
    m = _masks()
    eight = np.ones((3, 3), dtype=bool)
    islands = [ndi.label(layer, structure=eight)[1] for layer in m]
    c = label_compact(OPS, np, m)
    np.testing.assert_array_equal(np.bincount(c.layer_of(), minlength=6), islands)
    holes = []
    for layer in m:
        bg, nb = ndi.label(~layer, structure=eight)
        edge = set(np.concatenate([bg[0], bg[-1], bg[:, 0], bg[:, -1]]).tolist())
        holes.append(len(set(range(1, nb + 1)) - edge))
    np.testing.assert_array_equal(count_holes(OPS, np, m), holes)


def test_labels_layer_from_per_layer_maxima():
    """Every label's layer, read off the per-layer maxima, is the layer its cells are in."""
    m = _masks()
    lab, n = ndi.label(m, structure=INPLANE)
    kk = np.nonzero(lab)[0]
    truth = np.zeros(int(n) + 1, dtype=int)
    truth[lab[lab > 0]] = kk
    np.testing.assert_array_equal(label_layers(layer_bounds(lab), int(n)), truth[1:])


def test_run_starts_along_rows_and_columns():
    m = _masks()
    for axis in (2, 1):
        want = []
        for layer in m if axis == 2 else m.transpose(0, 2, 1):
            starts = 0
            for row in layer:
                prev = [False, False]
                for v in row:
                    starts += bool(v and not prev[-1] and not prev[-2])
                    prev.append(bool(v))
            want.append(starts)
        np.testing.assert_array_equal(runs(m, axis=axis), want)


def test_label_sums_from_row_runs_equal_the_cell_sums():
    """Cells and index sums per label from row runs, on a window offset in the grid."""
    m = _masks()
    c = label_compact(OPS, np, m, y0=7, x0=3)
    cnt, sx, sy = label_sums(np, c)
    for lab in range(1, c.n + 1):
        _, jj, ii = np.nonzero(c.lab == lab)
        assert cnt[lab - 1] == jj.size
        assert sx[lab - 1] == (ii + c.x0).sum()
        assert sy[lab - 1] == (jj + c.y0).sum()


def test_label_cells_counts_each_labels_cells():
    """Cells per label, against counting each label's cells one by one."""
    m = _masks()
    c = label_compact(OPS, np, m)
    cnt = label_cells(np, c)
    assert cnt.shape == (c.n,) and c.n > 3
    for lab in range(1, c.n + 1):
        assert cnt[lab - 1] == np.count_nonzero(c.lab == lab)


def test_each_hole_where_it_is_and_in_the_island_around_it():
    """Holes' centroids and areas against SciPy's labels layer by layer, and the island
    named as around each one: that island, its own holes filled (SciPy), covers the hole."""
    m = _masks()
    p = 0.5
    eight = np.ones((3, 3), dtype=bool)
    isl = label_compact(OPS, np, m)
    counts, at = hole_components(OPS, np, m, isl, 10, p)
    np.testing.assert_array_equal(counts, count_holes(OPS, np, m))
    assert sum(len(v) for v in at.values()) == counts.sum() > 10
    for k, layer in enumerate(m):
        bg, nb = ndi.label(~layer, structure=eight)
        edge = set(np.concatenate([bg[0], bg[-1], bg[:, 0], bg[:, -1]]).tolist())
        holes = [h for h in range(1, nb + 1) if h not in edge]
        if not holes:
            assert k + 10 not in at
            continue
        lab, _ = ndi.label(layer, structure=eight)
        assert len(at[k + 10]) == len(holes)
        for (x, y, area, island), h in zip(at[k + 10], holes, strict=True):
            jj, ii = np.nonzero(bg == h)
            # centres as components(): cell (j, i) of the padded slab at ((i - 1/2) p, ...)
            assert (x, y) == pytest.approx(((ii.mean() - 0.5) * p, (jj.mean() - 0.5) * p))
            assert area == pytest.approx(jj.size * p * p)
            assert ndi.binary_fill_holes(lab == int(island) + 1)[jj, ii].all()


def test_a_hole_inside_a_ring_inside_a_hole_names_the_inner_ring():
    """Nested squares: ring A (rows 2-37) holds ring B (rows 10-29) in its hole, B holds
    its own hole, and a plain island C with a hole sits beside them. By construction A's
    hole (the gap between the rings) belongs to A, B's to B, C's to C."""
    m = np.zeros((2, 40, 70), dtype=bool)
    m[:, 2:38, 2:38] = True
    m[:, 6:34, 6:34] = False  # A's hole
    m[:, 10:30, 10:30] = True  # B
    m[:, 14:26, 14:26] = False  # B's hole
    m[:, 5:20, 45:60] = True  # C
    m[:, 9:15, 49:55] = False  # C's hole
    isl = label_compact(OPS, np, m)
    _, at = hole_components(OPS, np, m, isl, 0, 1.0)
    names = {(2, 2): "A", (10, 10): "B", (5, 45): "C"}  # each island's first cell
    lab, _ = ndi.label(m[0], structure=np.ones((3, 3), dtype=bool))
    first = {int(lab[yx]) - 1: name for yx, name in names.items()}  # index in label order
    # holes, in raster order of their first cells: A's gap (row 6), C's (row 9), B's (row 14)
    assert [first[int(i)] for i in at[0][:, 3]] == ["A", "C", "B"]
    assert at[0][:, 2].tolist() == [28 * 28 - 20 * 20, 36.0, 144.0]
