"""The parts of the FDM accuracy comparison against PrusaSlicer (tests and benchmark).

Simple solids made here (a solid block, a 1.2 mm thin-walled box, a tall thin tower),
the sample parts, and real meshes from the shared corpus. Which parts were used to fit
the model's free constants is recorded here, so accuracy is reported on the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import manifold3d as mf
import numpy as np
import trimesh

from ..samples import sample_mesh

# Parts whose PrusaSlicer estimates fitted GYROID_AREA_FACTOR, ANCHOR_BOUNDARY_FACTOR
# (features.py) and TimeConstants (time.py); all others are held out.
TRAINING = (
    "calibration_cube",
    "block",
    "tower",
    "benchy",
    "headphone_stand",
    "headphone_stand_sup",
)


@dataclass(frozen=True)
class RefPart:
    name: str
    path: Path
    supports: bool = False

    @property
    def training(self) -> bool:
        return self.name in TRAINING


def _box(x: float, y: float, z: float) -> trimesh.Trimesh:
    m = trimesh.creation.box((x, y, z))
    m.apply_translation((0, 0, z / 2))
    return m


def _manifold(m: trimesh.Trimesh) -> mf.Manifold:
    return mf.Manifold(mf.Mesh(np.asarray(m.vertices, np.float32), np.asarray(m.faces, np.uint32)))


def thin_walled_box(wall_mm: float = 1.2) -> trimesh.Trimesh:
    """50 x 40 x 30 mm open box with 1.2 mm walls and a 1.2 mm floor."""
    outer = _box(50, 40, 30)
    inner = _box(50 - 2 * wall_mm, 40 - 2 * wall_mm, 30)
    inner.apply_translation((0, 0, wall_mm))
    r = (_manifold(outer) - _manifold(inner)).to_mesh()
    return trimesh.Trimesh(r.vert_properties[:, :3], r.tri_verts)


MADE = {
    "block": lambda: _box(40, 30, 15),
    "thin_box": thin_walled_box,
    "tower": lambda: _box(10, 10, 120),
    "phone_case": lambda: sample_mesh("phone_case"),
    "bracket": lambda: sample_mesh("bracket"),
    "bracket_bionic": lambda: sample_mesh("bracket_bionic"),
}


# Corpus meshes by part name (files in the shared corpus's stl/ folder).
_CORPUS_FILES = {
    "calibration_cube": "calibration_cube_nmgrl.stl",
    "keychain": "tiy_keychain_text.stl",
    "headphone_stand": "headphone_stand_top_dinubs.stl",
    "iphone6_case": "iphone6_case_thing3532190.stl",
    "iphone6s_case": "iphone6s_case.stl",
    "benchy": "3dbenchy_lowpoly_aria876.stl",
    "cookie_cutter": "cookie_cutter_chicken_12across.stl",
    "engine_bracket": "engine_bracket_metastruct.stl",
    "vase_12across": "vase_12across.stl",
    "vase_robotsupc": "vase_robotsupc.stl",
}
# These are compared a second time with supports on, as "<name>_sup".
_WITH_SUPPORTS = ("headphone_stand", "iphone6_case")
# name -> (corpus file, supports on)
CORPUS = {
    name + suffix: (file, sup)
    for name, file in _CORPUS_FILES.items()
    for suffix, sup in (("", False), ("_sup", True))
    if not sup or name in _WITH_SUPPORTS
}


def reference_parts(
    out_dir: Path, corpus_stl: Path, names: list[str] | None = None
) -> list[RefPart]:
    """Write the made parts to ``out_dir`` and list them with the corpus ones (by name)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    parts: list[RefPart] = []
    for name in names or [*MADE, *CORPUS]:
        if name in MADE:
            p = out_dir / f"{name}.stl"
            MADE[name]().export(p)
            parts.append(RefPart(name, p))
        elif name in CORPUS:
            fn, sup = CORPUS[name]
            parts.append(RefPart(name, corpus_stl / fn, sup))
        else:
            raise KeyError(f"unknown reference part {name!r}")
    return parts
