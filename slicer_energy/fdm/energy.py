"""Energy of a predicted FDM print: the G-code path's thermal/electrical timeline, fed by layers.

There is one electrical model (:mod:`slicer_energy.thermal`) and one integrator of it
over a print (the G-code analyser's timeline): heaters as first-order systems (full
power until the set point, then holding power; the hotend also heats the filament
flow), electronics, steppers, part-cooling fan, PSU efficiency. Here the timeline is
driven by the events a PrusaSlicer MK3S start/end G-code issues (set temperatures,
wait for bed then hotend, home, mesh-level, fan on after the first layers, heaters off)
and by one motion interval per predicted layer with its extruded filament, so a
prediction and the analysis of the sliced G-code integrate the same physics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..gcode.analyze import _Timeline
from ..gcode.parse import Event
from ..machine import FdmMachine
from .settings import PrintSettings


@dataclass
class EnergyResult:
    energy_j: float
    by_component_j: dict[str, float]
    by_phase_j: dict[str, float]
    by_phase_s: dict[str, float]
    time_s: float  # everything: heat-up, homing, levelling, printing


def _ev(cmd: str, **params: float) -> Event:
    return Event(index=0, line=0, cmd=cmd, params={k: float(v) for k, v in params.items()})


def print_energy(
    machine: FdmMachine,
    s: PrintSettings,
    layer_s: np.ndarray,
    layer_filament_mm: np.ndarray,
    start_end_s: float = 0.0,
) -> EnergyResult:
    """Integrate the machine's electrical model over the predicted print.

    ``layer_s`` and ``layer_filament_mm`` are per layer (motion time, filament length);
    ``start_end_s`` is the motion of the start and end G-code (intro line, park).
    """
    tl = _Timeline(machine, thermal=True, keep_rows=False)
    phase_j: dict[str, float] = {}

    def run(label: str, fn) -> None:
        before = sum(tl.comp.values())
        fn()
        phase_j[label] = phase_j.get(label, 0.0) + sum(tl.comp.values()) - before

    # Start G-code (PrusaSlicer MK3S): M104, M140, M190 (wait bed), M109 (wait hotend), G28, G80.
    def heat_up() -> None:
        tl.event(_ev("M104", S=s.first_layer_hotend_c))
        tl.event(_ev("M140", S=s.first_layer_bed_c))
        tl.event(_ev("M190", S=s.first_layer_bed_c))
        tl.event(_ev("M109", S=s.first_layer_hotend_c))

    run("heat_up", heat_up)
    run("homing_leveling", lambda: (tl.event(_ev("G28")), tl.event(_ev("G80"))))
    tl.steppers = True

    def printing() -> None:
        tl.advance(start_end_s * 0.5, "motion", True, 0.0)
        for k, (dt, fil) in enumerate(zip(layer_s, layer_filament_mm, strict=True)):
            if k == 1:
                tl.event(_ev("M104", S=s.hotend_c))
                tl.event(_ev("M140", S=s.bed_c))
            if k == s.disable_fan_first_layers:
                tl.event(_ev("M106", S=255.0 * s.fan_speed))
            tl.advance(float(dt), "motion", True, float(fil))
        tl.event(_ev("M104", S=0.0))
        tl.event(_ev("M140", S=0.0))
        tl.event(_ev("M107"))
        tl.advance(start_end_s * 0.5, "motion", True, 0.0)
        tl.event(_ev("M84"))

    run("print", printing)
    phases_s = {k: v for k, v in tl.phase.items() if v}
    return EnergyResult(
        energy_j=float(sum(tl.comp.values())),
        by_component_j=dict(tl.comp),
        by_phase_j=phase_j,
        by_phase_s=phases_s,
        time_s=tl.t,
    )
