"""``predict`` for FDM: mesh → LayerGrid → features → time → energy → :class:`Estimate`.

The print settings come from a preset (``hardware/fdm-print/``) that mirrors a
PrusaSlicer 2.5 MK3S profile; the machine (kinematics, heaters, electrical loads,
build volume) from ``hardware/fdm/`` — the same profile the G-code path uses.
"""

from __future__ import annotations

import math
import time
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import SettingsError
from ..estimate import Estimate
from ..machine import FdmMachine, load_machine
from ..voxelize import GridCost, LayerGrid, grid_for, voxelize
from .energy import EnergyResult, print_energy
from .features import FEATURES, LayerFeatures, decompose
from .materials import load_material, with_material
from .plate import arrange, per_part, plate_features
from .sections import corners_by_turn_per_layer
from .settings import DEFAULT_PRESET, PrintSettings, load_preset, settings_dict
from .time import TURN_BINS_DEG, MotionLimits, TimeConstants, TimeResult, layer_times

DEFAULT_MACHINE = "prusa-mk3s"
# Grid cells the CPU path aims at (pitch grows for big parts; perimeters are measured
# with sub-cell accuracy, so 0.3 mm cells still give their length within ~2 %).
DEFAULT_CELL_BUDGET = 5e6
MIN_PITCH_MM = 0.1
MAX_PITCH_MM = 0.7
MAX_CELLS = 1.2e8  # about 1 GB peak (measured on the 197 x 188 x 150 mm vase at 0.7 mm)
# Peak memory of voxelising and decomposing: grid-sized arrays, and feature slabs of up to
# 512 MB (measured: 260 MB for 5e6 cells, 650 MB for 1.5e7, 620 MB for 5e7).
FDM_COST = GridCost(12.0, work_per_cell=40.0, work_cap=512 * 2**20)
# Said with an estimate whose preset slices classic perimeters (measured with Debian's
# prusa-slicer 2.5 on the made gyroid sheet, MK3S 0.20 mm QUALITY, --perimeter-generator).
CLASSIC_WARNING = (
    "the preset's perimeter generator is classic, but the model lays perimeters as Arachne "
    "does (PrusaSlicer 2.5's default): thin walls, which classic fills with slow gap fill, can "
    "take much longer (PrusaSlicer's own estimate for a 1.2 mm gyroid sheet: 2 h 19 min "
    "classic, 1 h 24 min Arachne)"
)
# PrusaSlicer's MK3S start G-code extrudes a 100 mm intro line (G1 X60 E9, G1 X100 E12.5)
# that its "filament used" does not count; the energy timeline does not either.


def motion_limits(machine: FdmMachine) -> MotionLimits:
    """The kinematic limits the time model needs, from the shared machine profile."""
    k = machine.kinematics
    return MotionLimits(
        max_accel_xy_mm_s2=min(k.max_accel_mm_s2[0], k.max_accel_mm_s2[1]),
        max_accel_z_mm_s2=k.max_accel_mm_s2[2],
        max_accel_e_mm_s2=k.max_accel_mm_s2[3],
        accel_retract_mm_s2=k.accel_retract_mm_s2,
        max_feedrate_xy_mm_s=min(k.max_feedrate_mm_s[0], k.max_feedrate_mm_s[1]),
        max_feedrate_z_mm_s=k.max_feedrate_mm_s[2],
        jerk_xy_mm_s=min(k.jerk_mm_s[0], k.jerk_mm_s[1]),
        jerk_z_mm_s=k.jerk_mm_s[2],
        jerk_e_mm_s=k.jerk_mm_s[3],
    )


def check_fits(extents_mm: Any, machine: FdmMachine) -> None:
    """Refuse a part larger than the build volume, naming both sizes."""
    if machine.build_volume_mm is None:
        return
    ext = [float(v) for v in extents_mm]
    vol = machine.build_volume_mm
    over = [a for a, e, v in zip("xyz", ext, vol, strict=True) if e > v + 1e-6]
    if over:
        raise SettingsError(
            f"part is {ext[0]:.1f} x {ext[1]:.1f} x {ext[2]:.1f} mm but the {machine.name} "
            f"builds {vol[0]:.0f} x {vol[1]:.0f} x {vol[2]:.0f} mm (too large in "
            f"{', '.join(over)}); scale or split the part, or rotate it to fit"
        )


def choose_pitch_mm(extents_mm: Any, layer_height_mm: float, budget_cells: float) -> float:
    """xy cell size: 0.1 mm, coarser for big parts so the grid fits ``budget_cells``, but
    not coarser than ``MAX_PITCH_MM`` (about one line width: walls would blur) unless the
    grid would then exceed ``MAX_CELLS``."""
    x, y, z = (float(v) for v in extents_mm)
    nz = max(1.0, z / layer_height_mm)
    area = max(x * y, 1e-6)
    pitch = min(MAX_PITCH_MM, max(MIN_PITCH_MM, math.sqrt(area * nz / budget_cells)))
    return max(pitch, math.sqrt(area * nz / MAX_CELLS))


def predict_fdm(
    loaded: Any,
    machine: str | FdmMachine = DEFAULT_MACHINE,
    material: str | None = None,
    preset: str | PrintSettings = DEFAULT_PRESET,
    infill_percent: float | None = None,
    supports: bool | None = None,
    layer_height_mm: float | None = None,
    xp: ModuleType | str | None = None,
    cell_budget: float = DEFAULT_CELL_BUDGET,
    constants: TimeConstants | None = None,
    max_memory_gb: float | None = None,
    copies: int = 1,
) -> Estimate:
    """Print time, filament and wall energy of one part on one FDM printer (or of one
    copy's share of a plate of ``copies``, the whole plate in ``extra['plate']``).

    Parameters
    ----------
    loaded : geometry.LoadedMesh (on the plate, mm)
    machine : profile name in ``hardware/fdm/`` or a loaded :class:`FdmMachine`
    material : ``hardware/fdm-material/`` name or slicer filament file (default: preset's, PLA)
    preset : print settings preset name, .toml path or :class:`PrintSettings`
    infill_percent, supports, layer_height_mm : overrides of the preset
    xp : array backend for the voxel work (NumPy or CuPy)
    max_memory_gb : the grid's memory budget (default: half the available memory)
    copies : copies on one plate, arranged and printed as PrusaSlicer does (:mod:`.plate`)
    """
    t0 = time.perf_counter()
    m = machine if isinstance(machine, FdmMachine) else load_machine(machine)
    s = _settings(preset, infill_percent, supports, layer_height_mm)
    mat = load_material(material) if material else None
    if mat:  # the preset's temperatures and the printer's filament follow the material
        s, m = with_material(s, m, mat)
    mesh = loaded.mesh if hasattr(loaded, "mesh") else loaded
    ext = np.asarray(mesh.extents, dtype=float)
    check_fits(ext, m)
    bed = m.build_volume_mm[:2] if m.build_volume_mm else None
    plate = arrange((ext[0], ext[1]), copies, bed, machine=m.name)
    pitch = choose_pitch_mm(ext, s.layer_height_mm, cell_budget)
    grid = _grid(mesh, s, pitch, xp, max_memory_gb)
    t_vox = time.perf_counter()
    feat = decompose(grid, s, filament_diameter_mm=m.filament.diameter_mm, mesh=mesh)
    corners = corners_by_turn_per_layer(mesh, grid.layer_z_mm(), TURN_BINS_DEG) * copies
    if copies > 1:
        feat = plate_features(feat, plate, s.skirt_loops)
    t_feat = time.perf_counter()
    limits = motion_limits(m)
    tr = layer_times(feat, s, limits, constants, corners_per_layer=corners)
    layer_fil = sum(feat.volume_mm3.values()) / m.filament.area_mm2
    en = print_energy(m, s, tr.layer_s, layer_fil, tr.start_end_s)
    t_end = time.perf_counter()
    est = _estimate(m, s, feat, tr, en, float(layer_fil.sum()), pitch, ext)
    est.settings = {"material": mat.name if mat else "PLA", **est.settings}  # presets: PLA
    est.extra.update(
        seconds={"voxelize": t_vox - t0, "features": t_feat - t_vox, "time_energy": t_end - t_feat},
        backend=grid.info.get("backend"),
    )
    if s.perimeter_generator == "classic":
        est.extra.setdefault("warnings", []).append(CLASSIC_WARNING)
    return per_part(est, plate) if copies > 1 else est


def _settings(
    preset: str | PrintSettings,
    infill_percent: float | None = None,
    supports: bool | None = None,
    layer_height_mm: float | None = None,
) -> PrintSettings:
    """The preset with the command line's overrides, checked (infill 0..100 %)."""
    s = preset if isinstance(preset, PrintSettings) else load_preset(preset)
    if infill_percent is not None and not (0.0 <= infill_percent <= 100.0):
        raise SettingsError(f"infill {infill_percent} % is outside 0..100 %")
    return s.with_overrides(
        infill_density=None if infill_percent is None else infill_percent / 100.0,
        supports=supports,
        layer_height_mm=layer_height_mm,
    )


def _grid(
    mesh: Any,
    s: PrintSettings,
    pitch: float,
    xp: ModuleType | str | None = None,
    max_memory_gb: float | None = None,
) -> LayerGrid:
    """The part voxelised at the layer height, with PrusaSlicer's slicing heights.

    Layer 0 is first_layer_height thick, the others layer_height: the grid's first cell
    starts so much lower that every later layer's cell centre sits at PrusaSlicer's slicing
    height (the first layer's bead height is taken from the settings).
    """
    z_bottom = float(mesh.bounds[0][2])
    origin, shape = grid_for(
        np.asarray(mesh.bounds),
        pitch,
        s.layer_height_mm,
        z0=z_bottom + s.first_layer_height_mm - s.layer_height_mm,
    )
    return voxelize(
        mesh,
        pitch,
        s.layer_height_mm,
        origin=origin,
        shape=shape,
        xp=xp,
        cost=FDM_COST,
        max_memory_gb=max_memory_gb,
    )


def _estimate(
    m: FdmMachine,
    s: PrintSettings,
    feat: LayerFeatures,
    tr: TimeResult,
    en: EnergyResult,
    filament_mm: float,
    pitch: float,
    ext: np.ndarray,
) -> Estimate:
    """The Estimate of a predicted print: phases, features, components and filament."""
    by_feature = {k: v for k, v in tr.totals_by_feature_s().items() if v > 0}
    area_fil = m.filament.area_mm2
    fil_by_feature = {
        k: float(feat.volume_mm3[k].sum() / area_fil) for k in FEATURES if feat.volume_mm3[k].sum()
    }
    phase_s = {
        "heat_up": en.by_phase_s.get("wait", 0.0),
        "homing_leveling": en.by_phase_s.get("homing", 0.0) + en.by_phase_s.get("leveling", 0.0),
        # Motion as the energy timeline ran it: planned time × a calibrated time scale.
        "print": en.by_phase_s.get("motion", 0.0),
    }
    return Estimate(
        process="fdm",
        machine=m.name,
        time_s=float(sum(phase_s.values())),
        energy_j=en.energy_j,
        time_by_phase_s=phase_s,
        energy_by_phase_j=dict(en.by_phase_j),
        time_by_feature_s=by_feature,
        energy_by_component_j=dict(en.by_component_j),
        material_g=m.filament.mass_g(filament_mm),
        settings={"preset": s.name, **settings_dict(s)},
        provenance={
            "machine_profile": m.path,
            "preset": s.path,
            "kind": "calibrated" if m.calibrated else "default",
        },
        extra={
            "print_time_s": tr.total_s,  # planned motion, as a slicer estimates it
            "filament_mm": filament_mm,
            "filament_by_feature_mm": fil_by_feature,
            "layers": feat.nz,
            "pitch_xy_mm": pitch,
            "islands_max": int(feat.islands.max()) if feat.nz else 0,
            "layers_slowed_for_cooling": int(np.isfinite(tr.speed_cap_mm_s).sum()),
            "part_extents_mm": [float(v) for v in ext],
        },
    )
