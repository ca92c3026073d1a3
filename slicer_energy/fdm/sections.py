"""What the part's mesh says about each layer, exactly: its section length and its sharp
contour corners (from the triangles, free of the voxel staircase)."""

from __future__ import annotations

from typing import Any

import numpy as np


def contour_length_per_layer(mesh: Any, z_mid_mm: np.ndarray) -> np.ndarray:
    """Length (mm) of the mesh's section by the plane at each layer's mid-height.

    Each triangle crossing the plane adds the segment between its long edge (lowest to
    highest vertex) and the edge on the other side of its middle vertex.
    """
    if hasattr(mesh, "mesh"):
        mesh = mesh.mesh
    zm = np.asarray(z_mid_mm, dtype=float)
    out = np.zeros(zm.shape[0])
    tri = np.asarray(mesh.triangles, dtype=float)
    if tri.size == 0 or zm.size == 0:
        return out
    order = np.argsort(tri[:, :, 2], axis=1)
    tri = np.take_along_axis(tri, order[:, :, None], axis=1)
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    i0 = np.searchsorted(zm, a[:, 2], side="right")
    i1 = np.searchsorted(zm, c[:, 2], side="left")
    n = np.maximum(i1 - i0, 0)
    keep = n > 0
    a, b, c, i0, n = a[keep], b[keep], c[keep], i0[keep], n[keep]
    f = np.repeat(np.arange(n.size), n)
    k = np.repeat(i0 - np.cumsum(n) + n, n) + np.arange(int(n.sum()))
    z = zm[k]
    A, B, C = a[f], b[f], c[f]

    def at(p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
        dz = p1[:, 2] - p0[:, 2]
        t = np.where(dz > 0, (z - p0[:, 2]) / np.where(dz > 0, dz, 1.0), 0.0)
        return p0[:, :2] + t[:, None] * (p1[:, :2] - p0[:, :2])

    p = at(A, C)
    lower = z < B[:, 2]
    q = np.where(lower[:, None], at(A, B), at(B, C))
    seg = np.hypot(*(p - q).T)
    np.add.at(out, k, seg)
    return out


def sharp_corners_per_layer(
    mesh: Any, z_mid_mm: np.ndarray, min_turn_deg: float = 20.0
) -> np.ndarray:
    """Number of sharp contour corners in each layer, from the mesh's creased edges.

    A non-horizontal mesh edge whose two faces turn by more than ``min_turn_deg`` cuts
    every layer it spans in a corner of the contour, where the planner must slow to the
    jerk speed. Facetted curves (small turns per facet) are not counted.
    """
    return corners_by_turn_per_layer(mesh, z_mid_mm, (min_turn_deg, 180.0))[:, 0]


def corners_by_turn_per_layer(mesh: Any, z_mid_mm: np.ndarray, bins_deg: Any) -> np.ndarray:
    """Creased-edge crossings per layer (rows) by the faces' turn angle (columns: the
    intervals between consecutive ``bins_deg``); the turn stands for the contour's there."""
    if hasattr(mesh, "mesh"):
        mesh = mesh.mesh
    nz = int(np.asarray(z_mid_mm).shape[0])
    edges_deg = np.asarray(bins_deg, dtype=float)
    out = np.zeros((nz, len(edges_deg) - 1))
    try:
        angles = np.degrees(np.asarray(mesh.face_adjacency_angles))
        edges = np.asarray(mesh.face_adjacency_edges)
    except Exception:  # non-manifold input: no corner information
        return out
    if angles.size == 0:
        return out
    b = np.searchsorted(edges_deg, angles, side="right") - 1
    keep = (b >= 0) & (b < len(edges_deg) - 1) & (angles > edges_deg[0])
    v = np.asarray(mesh.vertices)
    z = v[edges[keep]][:, :, 2]
    z0, z1 = z.min(axis=1), z.max(axis=1)
    zm = np.asarray(z_mid_mm, dtype=float)
    i0 = np.searchsorted(zm, z0, side="left")
    i1 = np.searchsorted(zm, z1, side="left")
    diff = np.zeros((nz + 1, out.shape[1]))
    np.add.at(diff, (i0, b[keep]), 1.0)
    np.add.at(diff, (i1, b[keep]), -1.0)
    return np.cumsum(diff, axis=0)[:nz]
