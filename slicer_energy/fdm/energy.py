"""Energy of a predicted FDM print: the one timeline (:mod:`slicer_energy.thermal`), fed a schedule.

There is one electrical model and one integrator of it over a print
(:class:`slicer_energy.thermal.Timeline`, which the G-code analyser drives too): heaters as
first-order systems (full power until the set point, then holding power; the hotend also
heats the filament flow), electronics, steppers, part-cooling fan, PSU efficiency. Here the
timeline plays an explicit schedule (:func:`print_schedule`): what a PrusaSlicer MK3S start
and end G-code does (set temperatures, wait for bed then hotend, home, mesh-level, fan on
after the first layers, heaters off) and one motion interval per predicted layer with its
extruded filament, so a prediction and the analysis of the sliced G-code integrate the same
physics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..machine import FdmMachine
from ..thermal import Run, SetPoints, Step, Timeline, Wait
from .settings import PrintSettings


@dataclass
class EnergyResult:
    energy_j: float
    by_component_j: dict[str, float]
    by_phase_j: dict[str, float]
    by_phase_s: dict[str, float]
    time_s: float  # everything: heat-up, homing, levelling, printing


def print_schedule(
    machine: FdmMachine,
    s: PrintSettings,
    layer_s: np.ndarray,
    layer_filament_mm: np.ndarray,
    start_end_s: float = 0.0,
) -> list[tuple[str, list[Step]]]:
    """The print as labelled phases of heater targets, waits and motion intervals."""
    heat_up: list[Step] = [  # start G-code: M104, M140, M190 (wait bed), M109 (wait hotend)
        SetPoints(hotend_c=float(s.first_layer_hotend_c), bed_c=float(s.first_layer_bed_c)),
        Wait("bed"),
        Wait("hotend"),
    ]
    homing_leveling: list[Step] = [  # G28, G80
        SetPoints(steppers=True),
        Run(machine.homing_s, "homing"),
        Run(machine.bed_leveling_s, "leveling"),
    ]
    printing: list[Step] = [Run(start_end_s * 0.5)]
    for k, (dt, fil) in enumerate(zip(layer_s, layer_filament_mm, strict=True)):
        if k == 1:
            printing.append(SetPoints(hotend_c=float(s.hotend_c), bed_c=float(s.bed_c)))
        if k == s.disable_fan_first_layers:
            printing.append(SetPoints(fan=float(s.fan_speed)))
        printing.append(Run(float(dt), extruded_mm=float(fil)))
    printing += [  # end G-code: heaters and fan off, park, motors off
        SetPoints(hotend_c=0.0, bed_c=0.0, fan=0.0),
        Run(start_end_s * 0.5),
        SetPoints(steppers=False),
    ]
    return [("heat_up", heat_up), ("homing_leveling", homing_leveling), ("print", printing)]


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
    tl = Timeline(machine, thermal=True, keep_rows=False)
    phase_j = tl.play(print_schedule(machine, s, layer_s, layer_filament_mm, start_end_s))
    return EnergyResult(
        energy_j=tl.energy_j,
        by_component_j=dict(tl.comp),
        by_phase_j=phase_j,
        by_phase_s={k: v for k, v in tl.phase.items() if v},
        time_s=tl.t,
    )
