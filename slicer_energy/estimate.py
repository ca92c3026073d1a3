"""The one result type every process model returns.

An :class:`Estimate` holds seconds and joules split by phase (heat-up, print,
cool-down, ...) and by feature (perimeter, infill, ... for FDM; laser, recoat
for sintering) and by electrical component (bed, hotend, electronics, ...),
material used and wasted, and where the machine profile came from. CLI
tables, JSON output, batch rows and the LCA layer all read this, nothing else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

J_PER_KWH = 3.6e6


@dataclass
class Estimate:
    process: str  # "fdm", "sls", "mls", "injection-moulding", "casting"
    machine: str  # profile name, e.g. "prusa-mk3s"
    time_s: float
    energy_j: float
    time_by_phase_s: dict[str, float] = field(default_factory=dict)
    energy_by_phase_j: dict[str, float] = field(default_factory=dict)
    time_by_feature_s: dict[str, float] = field(default_factory=dict)
    energy_by_component_j: dict[str, float] = field(default_factory=dict)
    material_g: float = 0.0
    waste_g: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)  # profile file, default/calibrated
    extra: dict[str, Any] = field(default_factory=dict)  # process-specific figures

    @property
    def energy_kwh(self) -> float:
        return self.energy_j / J_PER_KWH

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; adds ``energy_kwh`` next to joules."""
        d = asdict(self)
        d["energy_kwh"] = self.energy_kwh
        return d
