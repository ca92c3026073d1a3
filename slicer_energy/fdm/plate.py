"""A plate of N copies of one part (``predict PART --copies N``), as PrusaSlicer prints it.

**Arrangement.** PrusaSlicer 2.5's ``--duplicate N`` arranges the copies around the bed
centre, 6 mm apart; for N = 4 and 16 of the corpus calibration cube and keychain its G-code
puts them on a square grid whose pitch is the part's footprint plus 6 mm (measured with
``prusa-slicer --export-gcode --duplicate N``, MK3S 0.20mm QUALITY). Here every N is a grid
of rows x columns, the squarest one that fits the bed (for N that is not a square number
PrusaSlicer's packer may place them otherwise; the time depends on the copy spacing, not on
the exact places).

**Time.** PrusaSlicer prints the copies layer by layer (``complete_objects = 0``): each
layer holds every copy's features, so a plate's layer is the part's layer N times over
(:func:`plate_features`; the skirt goes once around the whole plate) and the cooling
slowdown sees the plate's layer, not one copy's. Every copy's islands sit at its place on
the plate, so the travel model (:mod:`.travel`) chains the whole plate's islands per layer,
the moves from copy to copy included; :func:`between_copies_mm` reports the length of one
pass over the copies' centres for the record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..errors import SettingsError
from ..estimate import Estimate
from .features import LayerFeatures

# PrusaSlicer 2.5's arrange distance for FFF without sequential printing (measured: the
# --duplicate grid's pitch is the part's footprint + 6.0 mm on the MK3S profile).
COPY_GAP_MM = 6.0


@dataclass(frozen=True)
class Plate:
    """N copies of a part: centres (mm, on the bed) in the order they are printed."""

    copies: int
    footprint_mm: tuple[float, float]
    grid: tuple[int, int]  # columns, rows
    centres_mm: np.ndarray  # (copies, 2)

    @property
    def span_mm(self) -> tuple[float, float]:
        """Extent of the copies' centres (x, y): what the plate adds to one copy's size."""
        c = self.centres_mm
        return float(np.ptp(c[:, 0])), float(np.ptp(c[:, 1]))

    @property
    def size_mm(self) -> tuple[float, float]:
        sx, sy = self.span_mm
        return self.footprint_mm[0] + sx, self.footprint_mm[1] + sy


def _grid_size(copies: int, cols: int, fx: float, fy: float, gap: float) -> tuple[float, float]:
    rows = math.ceil(copies / cols)
    return cols * fx + (cols - 1) * gap, rows * fy + (rows - 1) * gap


def arrange(
    footprint_mm: tuple[float, float],
    copies: int,
    bed_mm: tuple[float, float] | None,
    gap_mm: float = COPY_GAP_MM,
    machine: str = "printer",
) -> Plate:
    """Copies on a grid centred on the bed, the squarest grid that fits (one-line error if
    none does); printed in serpentine order, row by row."""
    if copies < 1:
        raise SettingsError(f"--copies must be >= 1, got {copies}")
    fx, fy = (float(v) for v in footprint_mm)
    shapes = sorted(
        range(1, copies + 1),
        key=lambda c: abs(np.subtract(*_grid_size(copies, c, fx, fy, gap_mm))),
    )
    fits = [
        c
        for c in shapes
        if bed_mm is None
        or all(
            s <= b + 1e-6
            for s, b in zip(_grid_size(copies, c, fx, fy, gap_mm), bed_mm[:2], strict=True)
        )
    ]
    if not fits:
        w, h = _grid_size(copies, shapes[0], fx, fy, gap_mm)
        raise SettingsError(
            f"--copies {copies} of a {fx:.1f} x {fy:.1f} mm part need at least {w:.0f} x "
            f"{h:.0f} mm with {gap_mm:g} mm gaps, more than the {machine} bed "
            f"({bed_mm[0]:.0f} x {bed_mm[1]:.0f} mm); print fewer copies"  # type: ignore[index]
        )
    cols = fits[0]
    rows = math.ceil(copies / cols)
    centres = []
    for k in range(copies):
        r, c = divmod(k, cols)
        if r % 2:  # serpentine: every other row runs back
            c = cols - 1 - c
        centres.append((c * (fx + gap_mm), r * (fy + gap_mm)))
    xy = np.asarray(centres, dtype=float)
    xy -= xy.min(axis=0) + np.ptp(xy, axis=0) / 2  # centred on the bed's centre ...
    if bed_mm is not None:
        xy += np.asarray(bed_mm[:2], dtype=float) / 2  # ... in bed coordinates
    return Plate(copies, (fx, fy), (cols, rows), xy)


def between_copies_mm(plate: Plate) -> float:
    """Travel from copy to copy in one layer, and back to the first at the layer change."""
    c = plate.centres_mm
    if plate.copies < 2:
        return 0.0
    steps = np.hypot(*np.diff(c, axis=0).T).sum()
    return float(steps + np.hypot(*(c[-1] - c[0])))


def plate_features(feat: LayerFeatures, plate: Plate, skirt_loops: int) -> LayerFeatures:
    """The plate's layers: every copy's paths and volumes, and one skirt around the plate.

    The skirt surrounds the convex hull of all copies, the Minkowski sum of one copy's hull
    and the centres' hull, so each loop is longer by the perimeter of the centres' hull.
    """
    n = float(plate.copies)

    def times_n(d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: v * n for k, v in d.items()}

    length, volume = times_n(feat.length_mm), times_n(feat.volume_mm3)
    one = feat.length_mm["skirt_brim"]
    sx, sy = plate.span_mm
    skirt = np.where(one > 0, one + skirt_loops * 2 * (sx + sy), 0.0)
    length["skirt_brim"] = skirt
    volume["skirt_brim"] = feat.volume_mm3["skirt_brim"] * skirt / np.where(one > 0, one, 1.0)
    pieces = times_n(feat.pieces)
    pieces["skirt_brim"] = feat.pieces["skirt_brim"]
    return replace(
        feat,
        area_mm2=times_n(feat.area_mm2),
        length_mm=length,
        volume_mm3=volume,
        pieces=pieces,
        islands=feat.islands * n,
        loops=feat.loops * n,
        fill_parts=feat.fill_parts * n,
        inner_paths=feat.inner_paths * n,
        holes=feat.holes * n,
        fill_holes=feat.fill_holes * n,
        support_islands=feat.support_islands * n,
        extent_mm=(*plate.size_mm, feat.extent_mm[2]),
        islands_at=_placed(feat.islands_at, plate),
        supports_at=_placed(feat.supports_at, plate),
        holes_at=_placed_holes(feat.holes_at, feat.islands_at, plate),
    )


def _placed(at: dict[int, np.ndarray], plate: Plate) -> dict[int, np.ndarray]:
    """Every copy's islands (``[[x, y, area], ...]`` per layer) at its place on the plate,
    so the travel model chains the whole plate's islands, the moves between copies included."""
    shift = plate.centres_mm - plate.centres_mm[0]
    out = {}
    for k, pts in at.items():
        copies = np.repeat(pts[None, :, :], len(shift), axis=0).copy()
        copies[:, :, :2] += shift[:, None, :]
        out[k] = copies.reshape(-1, pts.shape[1])
    return out


def _placed_holes(
    holes_at: dict[int, np.ndarray], islands_at: dict[int, np.ndarray], plate: Plate
) -> dict[int, np.ndarray]:
    """Every copy's holes at its place, each still naming its own copy's island: copy ``c``
    of a layer of ``n`` islands has them at rows ``c·n .. c·n + n - 1`` of the placed ones."""
    assert holes_at.keys() <= islands_at.keys(), "holes in a layer without islands"
    out = _placed(holes_at, plate)
    for k, pts in out.items():
        per_copy = len(holes_at[k])
        copy = np.arange(len(pts)) // per_copy
        pts[:, 3] += copy * len(islands_at[k])
    return out


def per_part(plate_est: Estimate, plate: Plate) -> Estimate:
    """One copy's share of the plate's estimate (time, energy and material divided by N),
    with the whole plate under ``extra['plate']``."""
    n = plate.copies
    ex = plate_est.extra

    def share(d: dict[str, float]) -> dict[str, float]:
        return {k: v / n for k, v in d.items()}

    whole = {
        "copies": n,
        "grid": list(plate.grid),
        "centres_mm": plate.centres_mm.round(2).tolist(),
        "between_copies_mm_per_layer": between_copies_mm(plate),
        "job_time_s": plate_est.time_s,
        "job_print_time_s": ex["print_time_s"],
        "job_energy_kwh": plate_est.energy_kwh,
        "job_material_g": plate_est.material_g,
        "job_filament_mm": ex["filament_mm"],
    }
    extra = {
        **ex,
        "print_time_s": ex["print_time_s"] / n,
        "filament_mm": ex["filament_mm"] / n,
        "filament_by_feature_mm": share(ex["filament_by_feature_mm"]),
        "plate": whole,
    }
    return replace(
        plate_est,
        time_s=plate_est.time_s / n,
        energy_j=plate_est.energy_j / n,
        time_by_phase_s=share(plate_est.time_by_phase_s),
        energy_by_phase_j=share(plate_est.energy_by_phase_j),
        time_by_feature_s=share(plate_est.time_by_feature_s),
        energy_by_component_j=share(plate_est.energy_by_component_j),
        material_g=plate_est.material_g / n,
        extra=extra,
    )
