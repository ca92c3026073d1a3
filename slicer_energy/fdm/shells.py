"""Solid shells of the slab pass: PrusaSlicer's vertical shells (``ensure_vertical_shell_
thickness``), the solid under and over grown top and bottom surfaces, and the air above.

Each step reads one :class:`.slab.Slab` (with its halo of neighbouring layers) under the
shared :class:`.slab.Pass` and returns a boolean ``[layer, row, column]`` mask.
"""

from __future__ import annotations

from typing import Any

from .masks import dilate
from .slab import Pass, Slab

# PrusaSlicer 2.5 (discover_vertical_shells) opens the extra solid of
# ensure_vertical_shell_thickness by half of 1.05 solid-infill spacings: bands narrower than
# that (steep slopes, and the voxel staircase of vertical walls) stay sparse.
SHELL_OPENING_SPACINGS = 1.05
# Where a cell is wider than that opening, the voxel staircase of a sloped or curved wall
# moves the interior's edge by whole cells from layer to layer, and the shell test reads the
# steps as bands wider than the opening that PrusaSlicer's exact offsets do not have. There
# the whole test (is a neighbour's cell interior, how wide is the band) reads distances
# blurred in-plane by this sigma (cells), so that a shift reads as its mean over the
# neighbouring rows. Chosen from 1, 1.5 and 2 on the two training parts whose pitch exceeds
# the opening (vase_robotsupc, bracket_bionic: the larger time error of the two 10.0 %
# unblurred, 8.4, 5.7 and 8.1 %); vase_12across, engine_bracket and bracket, the other such
# parts, are held out.
STAIRCASE_SIGMA_CELLS = 1.5


def vertical_shells(g: Pass, sb: Slab, core: Any) -> Any:
    """Solid of ``ensure_vertical_shell_thickness`` for layers ``j0..k1-1``, where ``core``
    (their interior) has cells; the rest of the window is left solid, unread (solid is
    core & shell), so where few columns hold core cells only those are gathered and worked.

    A cell is solid where the interior is not interior in one of the ``nt`` layers above or
    ``nb`` below (layers outside the grid are air above, plate below, so a layer within
    ``nb`` of the plate or ``nt`` of the top is solid throughout). The band that makes it
    solid is d_here - d_there wide; PrusaSlicer's opening drops bands narrower than
    ``w_open``. Where cells are wider than that, both tests read distances blurred in-plane
    (``STAIRCASE_SIGMA_CELLS``).
    """
    xp, nt, nb = g.xp, g.nt, g.nb
    n = sb.a1 - sb.a0
    L0, L1 = sb.j0 - sb.a0, sb.k1 - sb.a0
    out = xp.ones(core.shape, dtype=bool)
    # Layers whose windows lie inside the slab (the halo covers all but the grid's ends).
    lo, hi = max(L0, nb), min(L1, n - nt)
    if lo >= hi:
        return out
    if nt == 0 and nb == 0:
        out[:] = False
        return out
    cols = xp.flatnonzero(core[lo - L0 : hi - L0].any(axis=0))
    if cols.size == 0:
        return out
    if 2 * cols.size > core.shape[1] * core.shape[2]:  # gathering costs more than it saves
        cols = slice(None)
    b0 = lo - nb  # rows b0 .. hi + nt - 1 of the slab are all the windows read
    dw = sb.dw[b0 : hi + nt]
    if g.p > g.w_open:  # cells wider than the opening: read the staircase's mean shift
        dw = g.ops.blur(dw, STAIRCASE_SIGMA_CELLS, mode="nearest")
    dd = dw.reshape(dw.shape[0], -1)[:, cols] - sb.tshell[b0 : hi + nt, :, 0]
    mins = _window_mins(xp, dd, max(nt, nb))
    above = _window_min(xp, mins, nt, lo + 1 - b0, hi + 1 - b0) if nt else None
    below = _window_min(xp, mins, nb, 0, hi - lo) if nb else None
    here = dd[lo - b0 : hi - b0]
    if above is not None and below is not None:
        mn = xp.minimum(above, below)
        res = mn <= 0
        res &= xp.subtract(here, mn, out=mn) >= g.w_open  # mn is ours to overwrite
    else:
        mn = above if above is not None else below
        res = mn <= 0
        res &= (here - mn) >= g.w_open
    out.reshape(out.shape[0], -1)[lo - L0 : hi - L0, cols] = res
    return out


def _window_mins(xp: Any, a: Any, w: int) -> dict[int, Any]:
    """Minima of ``a`` over windows of 1, 2, 4, ... (up to ``w``) consecutive layers: entry
    ``s`` holds min(a[i : i + s]) at i (doubling, so log2(w) passes, not w; exact)."""
    mins, s = {1: a}, 1
    while 2 * s <= w:
        m = mins[s]
        mins[2 * s] = xp.minimum(m[:-s], m[s:])
        s *= 2
    return mins


def _window_min(xp: Any, mins: dict[int, Any], w: int, i0: int, i1: int) -> Any:
    """min(a[i : i + w]) for i in ``i0..i1-1``, from two overlapping power-of-two windows."""
    s = max(k for k in mins if k <= w)
    m = mins[s]
    return m[i0:i1] if s == w else xp.minimum(m[i0:i1], m[i0 + w - s : i1 + w - s])


def grown_surface_shells(g: Pass, sb: Slab, interior: Any, r_mm: float) -> Any:
    """Cells of layers ``j0..k1-1`` within ``r_mm`` of a top surface of one of the
    ``nt - 1`` layers above, or of a bottom surface over air of the ``nb - 1`` below.

    Surfaces are the layer's interior with air directly above (top) or below (bottom, not
    on the plate).
    """
    xp, S, a0 = g.xp, sb.S, sb.a0
    n = sb.a1 - a0
    above = xp.zeros_like(S)
    above[:-1] = S[1:]
    top = interior & ~above
    if sb.a1 < g.nz:  # the slab's last layer: the layer above is outside the slab
        top[-1] = False
    bottom = xp.zeros_like(S)
    bottom[1:] = interior[1:] & ~S[:-1]
    grown: dict[tuple[str, int], Any] = {}

    def grown_at(kind: str, j: int) -> Any:
        key = (kind, j)
        if key not in grown:
            m = (top if kind == "t" else bottom)[j]
            grown[key] = dilate(g.ops, m, r_mm, g.p) if bool(m.any()) else None
        return grown[key]

    out = xp.zeros((sb.k1 - sb.j0,) + S.shape[1:], dtype=bool)
    for k in range(sb.j0, sb.k1):
        i = k - a0
        acc = out[k - sb.j0]
        neighbours = [("t", j) for j in range(i + 1, min(n, i + g.nt))]
        neighbours += [("b", j) for j in range(max(1 if a0 == 0 else 0, i - g.nb + 1), i)]
        for kind, j in neighbours:
            m = grown_at(kind, j)
            if m is not None:
                acc |= m
    return out


def air_within(g: Pass, sb: Slab) -> Any:
    """Cells of layers ``k0..k1-1`` with air in one of the ``nt`` layers above them (above the
    grid is air): the AND over those layers, by doubling windows."""
    xp, S, sl, nt = g.xp, sb.S, sb.here, g.nt
    out = xp.zeros(S[sl].shape, dtype=bool)
    if nt == 0:
        return out
    out[:] = True
    up = S[sl.start + 1 : sl.stop + nt]  # the halo holds them all but at the grid's top
    n_full = max(0, up.shape[0] - nt + 1)
    full = _window_min(xp, _window_mins(xp, up, nt), nt, 0, n_full) if n_full else up[:0]
    out[: full.shape[0]] = ~full
    return out
