"""The virtual printer's motion state: where the head is, the positioning modes, and the planner
blocks its moves become.

Kept apart from the serial side (:mod:`.printer`) because it is plain arithmetic: G0-G3, G28,
G90/G91, M82/M83 and G92 change the position and give blocks whose durations come from
:func:`~slicer_energy.rig.sim.physics.move_time_s`; the printer queues and executes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .physics import PrinterParams, move_time_s

# assumption: homing speeds of a typical Cartesian printer (50 mm/s X/Y, 5 mm/s Z) plus 1 s
# for the switch bumps; only the length of the homing block depends on them
HOME_FEED_XY_MM_S = 50.0
HOME_FEED_Z_MM_S = 5.0
HOME_BUMP_S = 1.0


@dataclass
class Block:
    """One planner entry: a move, or a fan change (Marlin queues it with the moves)."""

    duration_s: float
    moving: bool
    e_rate_mm_s: float
    fan: float | None = None


class Motion:
    """Position, feed rate and positioning modes, as Marlin keeps them while parsing moves."""

    def __init__(self, params: PrinterParams) -> None:
        self.params = params
        self.pos = {"X": 0.0, "Y": 0.0, "Z": 0.0, "E": 0.0}
        self.feed_mm_s = 25.0
        self.absolute = True
        self.abs_e = True

    def set_mode(self, word: str) -> None:
        """G90/G91 set XYZ and E absolute/relative; M82/M83 set E alone."""
        if word in ("G90", "G91"):
            self.absolute = word == "G90"
        self.abs_e = word in ("G90", "M82")

    def set_position(self, a: dict[str, float]) -> None:
        """G92: the named axes take the given values, nothing moves."""
        for k in "XYZE":
            if k in a:
                self.pos[k] = a[k]

    def position_line(self) -> str:
        """M114's answer."""
        p = self.pos
        return f"X:{p['X']:.2f} Y:{p['Y']:.2f} Z:{p['Z']:.2f} E:{p['E']:.2f} Count X:0 Y:0 Z:0"

    def move(self, word: str, a: dict[str, float]) -> Block | None:
        """G0-G3: go to the new position; the block to execute (None for a null move)."""
        if "F" in a:
            self.feed_mm_s = a["F"] / 60.0
        new = dict(self.pos)
        for k in "XYZ":
            if k in a:
                new[k] = a[k] if self.absolute else self.pos[k] + a[k]
        if "E" in a:
            new["E"] = a["E"] if self.abs_e else self.pos["E"] + a["E"]
        dxyz = math.dist(
            (self.pos["X"], self.pos["Y"], self.pos["Z"]), (new["X"], new["Y"], new["Z"])
        )
        if word in ("G2", "G3") and ("I" in a or "J" in a):
            dxyz = arc_length_mm(
                (self.pos["X"], self.pos["Y"]),
                (new["X"], new["Y"]),
                (a.get("I", 0.0), a.get("J", 0.0)),
                clockwise=word == "G2",
                dz_mm=new["Z"] - self.pos["Z"],
            )
        de = new["E"] - self.pos["E"]
        dist = dxyz if dxyz > 0 else abs(de)
        feed = min(self.feed_mm_s, self.params.max_feed_mm_s)
        if dxyz > 0 and abs(new["Z"] - self.pos["Z"]) > 0 and dxyz == abs(new["Z"] - self.pos["Z"]):
            feed = min(feed, self.params.max_z_feed_mm_s)
        dur = move_time_s(dist, feed, self.params.accel_mm_s2)
        self.pos = new
        return Block(dur, True, de / dur if de > 0 else 0.0) if dur > 0 else None

    def home(self, a: dict[str, float]) -> Block:
        """G28 (all axes, or those named): the homing block; the homed axes are at 0 after it."""
        axes = [k for k in "XYZ" if k in a] or ["X", "Y", "Z"]
        dur = HOME_BUMP_S + sum(
            abs(self.pos[k]) / (HOME_FEED_Z_MM_S if k == "Z" else HOME_FEED_XY_MM_S) for k in axes
        )
        for k in axes:
            self.pos[k] = 0.0
        return Block(dur, True, 0.0)


def arc_length_mm(
    start: tuple[float, float],
    end: tuple[float, float],
    center_offset: tuple[float, float],
    *,
    clockwise: bool,
    dz_mm: float = 0.0,
) -> float:
    """Length of a G2 (clockwise) / G3 arc with centre ``start + (I, J)``; start == end is a
    full circle, as in Marlin. A helix adds its Z rise."""
    cx, cy = start[0] + center_offset[0], start[1] + center_offset[1]
    r = math.hypot(center_offset[0], center_offset[1])
    a0 = math.atan2(start[1] - cy, start[0] - cx)
    a1 = math.atan2(end[1] - cy, end[0] - cx)
    sweep = (a0 - a1) if clockwise else (a1 - a0)
    sweep %= 2 * math.pi
    if sweep < 1e-9:
        sweep = 2 * math.pi
    return math.hypot(r * sweep, dz_mm)
