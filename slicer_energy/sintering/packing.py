"""Placing parts in a powder-bed build volume, and sharing the job's energy among them.

Heuristic (documented because energy per part depends on it):

* Each part occupies its axis-aligned bounding box plus a gap of at least ``spacing_mm``
  to every neighbour; the outer ``margin_mm`` of the chamber stays empty.
* Packing density = part volume / the machine's build volume (x · y · z of the chamber).
  Laser-sintering practice keeps parts apart for heat and depowdering, so a build never
  holds more than ``max_packing_density``: :func:`fill` widens the gap in 1 mm steps from
  ``spacing_mm`` until the full build is under it, and :func:`pack` refuses copies whose
  volume exceeds it.
* Shelf packing in decks: parts go left to right along x in a row; a full row starts
  a new row further along y (row depth = deepest part in it); a full deck starts a new
  deck above (deck height = tallest part in it). Polymer SLS may stack decks (the
  unsintered powder carries the parts); metal builds have one deck on the base plate.
* A part is turned 90° about z when its footprint is longer in y than in x, or when
  only the turned footprint fits. Turning about z does not change its layer profile.
* Items are placed in the order given (largest footprint first is left to the caller);
  no nesting of small parts into gaps. Denser nesting is possible in practice, so
  the full-build figures are conservative (fewer parts per build).

Energy allocation (:func:`allocate`): the laser's energy is shared by scanned volume
(each part's own exposure); everything time-dependent (warm-up, heaters, inert gas,
recoating, cool-down) is shared by build-height share, h_i / Σ h_j, since that time is
spent layer by layer for the parts present. Identical copies get identical shares.

Capacity utilisation: for copies of one part, ``copies / max_copies`` where
``max_copies`` is what ``fill`` places (the published sense: fraction of a full build);
for a mix, the parts' padded box volume over the usable chamber volume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import SettingsError
from .powderbed import PartLayers


@dataclass(frozen=True)
class Chamber:
    """Usable build space and placement rules of one machine."""

    x_mm: float
    y_mm: float
    z_mm: float
    spacing_mm: float  # the least gap between parts
    margin_mm: float
    max_packing_density: float  # part volume / build volume a build may hold
    stack_decks: bool  # SLS: parts may float in powder above others

    @property
    def volume_mm3(self) -> float:
        """Usable volume inside the margins."""
        return (self.x_mm - 2 * self.margin_mm) * (self.y_mm - 2 * self.margin_mm) * self.z_mm

    @property
    def build_volume_mm3(self) -> float:
        """The machine's build volume, what packing density is measured against."""
        return self.x_mm * self.y_mm * self.z_mm


@dataclass(frozen=True)
class Placement:
    """One part in the build: lower corner of its bounding box, and whether it is turned."""

    part: int  # index into the parts list
    x_mm: float
    y_mm: float
    z_mm: float
    turned: bool


@dataclass
class Packing:
    parts: list[PartLayers]
    placements: list[Placement]
    chamber: Chamber
    spacing_mm: float  # the gap the placements keep (>= chamber.spacing_mm)

    @property
    def copies(self) -> int:
        return len(self.placements)

    def height_mm(self) -> float:
        """Top of the highest part above the first layer."""
        return max(p.z_mm + self.parts[p.part].height_mm for p in self.placements)

    def parts_volume_mm3(self) -> float:
        return sum(self.parts[p.part].volume_mm3 for p in self.placements)

    def packing_density(self) -> float:
        """Part volume / the machine's build volume."""
        return self.parts_volume_mm3() / self.chamber.build_volume_mm3

    def padded_volume_mm3(self) -> float:
        s = self.spacing_mm
        tot = 0.0
        for p in self.placements:
            q = self.parts[p.part]
            tot += (q.footprint_mm[0] + s) * (q.footprint_mm[1] + s) * (q.height_mm + s)
        return tot


def _oriented(part: PartLayers, ch: Chamber) -> tuple[float, float, bool] | None:
    """Footprint (dx, dy) and turned flag, long side along x when it fits; None if no fit."""
    return _orient(part.footprint_mm, part.height_mm, ch)


def _orient(
    footprint_mm: tuple[float, float], height_mm: float, ch: Chamber
) -> tuple[float, float, bool] | None:
    fx, fy = footprint_mm
    ux, uy = ch.x_mm - 2 * ch.margin_mm, ch.y_mm - 2 * ch.margin_mm
    if height_mm > ch.z_mm:
        return None
    prefer = [(fx, fy, False), (fy, fx, True)]
    if fy > fx:
        prefer.reverse()
    for dx, dy, turned in prefer:
        if dx <= ux and dy <= uy:
            return dx, dy, turned
    return None


def check_fits(name: str, extents_mm: Sequence[float], chamber: Chamber) -> None:
    """Refuse a part larger than the build volume (called before voxelising it, too)."""
    x, y, z = (float(v) for v in extents_mm)
    if _orient((x, y), z, chamber) is None:
        raise SettingsError(
            f"{name!r} ({x:.1f} x {y:.1f} x {z:.1f} mm) does not fit the build volume "
            f"{chamber.x_mm:g} x {chamber.y_mm:g} x {chamber.z_mm:g} mm "
            f"(margin {chamber.margin_mm:g} mm)"
        )


class _ShelfPacker:
    """Greedy shelf/deck placer; :meth:`add` returns None when the chamber is full."""

    def __init__(self, ch: Chamber, spacing_mm: float):
        self.ch = ch
        self.s = spacing_mm
        self.x = self.y = self.z = 0.0
        self.row_depth = 0.0
        self.deck_height = 0.0

    def add(
        self, idx: int, part: PartLayers, orient: tuple[float, float, bool]
    ) -> Placement | None:
        ch, s = self.ch, self.s
        ux, uy = ch.x_mm - 2 * ch.margin_mm, ch.y_mm - 2 * ch.margin_mm
        dx, dy, turned = orient
        h = part.height_mm
        if self.x > 0 and self.x + dx > ux:  # new row
            self.y += self.row_depth + s
            self.x, self.row_depth = 0.0, 0.0
        if self.y > 0 and self.y + dy > uy:  # new deck
            if not ch.stack_decks:
                return None
            self.z += self.deck_height + s
            self.x = self.y = self.row_depth = self.deck_height = 0.0
        if self.z + h > ch.z_mm:
            return None
        p = Placement(idx, ch.margin_mm + self.x, ch.margin_mm + self.y, self.z, turned)
        self.x += dx + s
        self.row_depth = max(self.row_depth, dy)
        self.deck_height = max(self.deck_height, h)
        return p


def pack(parts: Sequence[PartLayers], counts: Sequence[int], chamber: Chamber) -> Packing:
    """Place ``counts[i]`` copies of ``parts[i]``; error if a part or the lot does not fit."""
    if len(parts) != len(counts):
        raise ValueError(f"{len(parts)} parts but {len(counts)} counts")
    if not parts:
        raise SettingsError("nothing to build: no parts given")
    orients = []
    for part, n in zip(parts, counts, strict=True):
        if int(n) != n or n < 1:
            raise SettingsError(f"copies of {part.name!r} must be a whole number >= 1, got {n}")
        check_fits(part.name, (*part.footprint_mm, part.height_mm), chamber)
        orients.append(_oriented(part, chamber))
    density = sum(p.volume_mm3 * n for p, n in zip(parts, counts, strict=True))
    density /= chamber.build_volume_mm3
    if density > chamber.max_packing_density:
        raise SettingsError(
            f"{sum(counts)} parts fill {density:.1%} of the build volume, more than the "
            f"packing density {chamber.max_packing_density:.0%} the machine profile allows "
            "(max_packing_density); use fewer copies or --fill"
        )
    packer = _ShelfPacker(chamber, chamber.spacing_mm)
    placements: list[Placement] = []
    # Tallest first keeps decks even; stable order otherwise.
    order = sorted(range(len(parts)), key=lambda i: -parts[i].height_mm)
    for i in order:
        for _ in range(int(counts[i])):
            p = packer.add(i, parts[i], orients[i])
            if p is None:
                raise SettingsError(
                    f"{sum(counts)} parts do not fit one build: only {len(placements)} placed "
                    f"(chamber {chamber.x_mm:g} x {chamber.y_mm:g} x {chamber.z_mm:g} mm); "
                    "use fewer copies or --fill"
                )
            placements.append(p)
    return Packing(list(parts), placements, chamber, chamber.spacing_mm)


def _fill_at(
    part: PartLayers, chamber: Chamber, orient: tuple[float, float, bool], spacing_mm: float
) -> Packing:
    packer = _ShelfPacker(chamber, spacing_mm)
    placements = []
    while (p := packer.add(0, part, orient)) is not None:
        placements.append(p)
    return Packing([part], placements, chamber, spacing_mm)


def fill(part: PartLayers, chamber: Chamber) -> Packing:
    """A full build of ``part``: as many copies as the heuristic places, with the gap widened
    (1 mm steps from ``spacing_mm``) until the build is within ``max_packing_density``."""
    o = _oriented(part, chamber)
    if o is None:
        pack([part], [1], chamber)  # raises the does-not-fit error
    spacing = chamber.spacing_mm
    while True:
        pk = _fill_at(part, chamber, o, spacing)  # type: ignore[arg-type]
        if pk.copies <= 1 or pk.packing_density() <= chamber.max_packing_density:
            return pk
        spacing += 1.0


def max_copies(part: PartLayers, chamber: Chamber) -> int:
    return fill(part, chamber).copies


def utilisation(packing: Packing) -> float:
    """Capacity utilisation: fraction of a full build (copies of one part) or of the volume."""
    if len(packing.parts) == 1:
        return packing.copies / max_copies(packing.parts[0], packing.chamber)
    return min(1.0, packing.padded_volume_mm3() / packing.chamber.volume_mm3)


def allocate(packing: Packing, laser_energy_j: float, other_energy_j: float) -> list[float]:
    """Job energy per placed part: laser by scanned volume, the rest by height share."""
    vols = [packing.parts[p.part].scanned_volume_mm3 for p in packing.placements]
    hts = [packing.parts[p.part].height_mm for p in packing.placements]
    sv, sh = sum(vols), sum(hts)
    return [
        laser_energy_j * (v / sv if sv > 0 else 1 / len(vols)) + other_energy_j * h / sh
        for v, h in zip(vols, hts, strict=True)
    ]


def stacked_profile(packing: Packing) -> tuple[np.ndarray, np.ndarray, float]:
    """Scanned area and contour length per z slab of the whole build, and the slab pitch.

    Each placed part's profile is added at the slab its lower corner falls in (all parts
    of one build are sampled with the same ``dz_mm``).
    """
    dz = packing.parts[0].dz_mm
    if any(abs(p.dz_mm - dz) > 1e-12 for p in packing.parts):
        raise ValueError("all parts of one build must be sampled with the same dz_mm")
    n = max(int(round(p.z_mm / dz)) + packing.parts[p.part].n_slabs for p in packing.placements)
    area = np.zeros(n)
    contour = np.zeros(n)
    for p in packing.placements:
        q = packing.parts[p.part]
        k0 = int(round(p.z_mm / dz))
        area[k0 : k0 + q.n_slabs] += q.area_mm2
        contour[k0 : k0 + q.n_slabs] += q.contour_mm
    return area, contour, dz
