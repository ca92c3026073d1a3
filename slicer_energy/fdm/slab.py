"""What the slab pass of :mod:`.regions` hands its steps: the settings every slab shares
(:class:`Pass`) and one slab's layers, occupancy and distances (:class:`Slab`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .grid_ops import GridOps


@dataclass(frozen=True)
class Pass:
    """What every slab of one decomposition shares."""

    xp: Any
    ops: GridOps  # labelling, distance transforms, blur (grid_ops.ops_for)
    nz: int
    p: float  # cell pitch in xy, mm
    nt: int  # top and bottom solid layers
    nb: int
    lim_first: tuple[float, float]  # band_limits of the first layer and of the others
    lim: tuple[float, float]
    w_open: float  # narrowest vertical-shell band kept solid, mm
    a_fill_min: float  # smallest fill area counted as one to travel to, mm²
    supports: bool
    beads: tuple[Any, Any]  # Arachne's transition widths, first layer and others
    perimeters: int
    central_slope: float  # Arachne's central-edge slope (arachne.central_slope)

    @property
    def cell_a(self) -> float:
        return self.p * self.p

    def per_layer(self, a: Any, i: int) -> Any:
        """``a`` as a (n, 1, 1) float32 column: first layer's value where the layer is 0."""
        return self.xp.where(a == 0, self.lim_first[i], self.lim[i]).astype(self.xp.float32)[
            :, None, None
        ]


@dataclass(frozen=True)
class Slab:
    """Layers ``k0..k1-1`` worked from the halo layers ``a0..a1-1`` (``S`` the padded
    occupancy, ``d`` the distance inside the contour, ``tshell`` the shell limit per layer).

    ``S`` and ``dw`` hold only the window ``y0``, ``x0`` (padded rows and columns) around
    the slab's cells, which keeps a ring of empty cells: no result depends on what lies
    beyond it. ``d`` is the whole padded layer (-p/2 outside the part): band areas are
    summed over whole layers so that their float32 sums stay the same.
    """

    k0: int
    k1: int
    a0: int
    a1: int
    S: Any
    d: Any
    tshell: Any
    dw: Any = None
    y0: int = 0
    x0: int = 0

    @property
    def j0(self) -> int:
        """One layer below the slab (is its interior sparse?), or 0."""
        return max(0, self.k0 - 1)

    @property
    def here(self) -> slice:
        return slice(self.k0 - self.a0, self.k1 - self.a0)
