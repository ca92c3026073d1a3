"""G-code file -> planned motion -> thermal/electrical timeline -> :class:`Estimate`.

Streams the file: chunks of moves go through a planner (``prusa`` emulates
PrusaSlicer 2.5's estimator, ``marlin``/``klipper`` the firmwares), and as soon as
a chunk's move times are final it is integrated into the timeline: intervals
between state changes (set points, fan, layer changes) during which the heaters
follow the first-order model of :mod:`slicer_energy.thermal`. Waits (M109/M190,
TEMPERATURE_WAIT) last as long as the heater model needs to reach the set point. The
timeline itself (state, integration, waits) is :class:`slicer_energy.thermal.Timeline`;
here it is only driven by the file's commands (:class:`GcodeTimeline`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..errors import GcodeError
from ..estimate import Estimate
from ..machine import FdmMachine
from ..thermal import Timeline, TimelineRow
from ._jit import JIT_MIN_BYTES, JIT_MIN_BYTES_PRUSA, want_jit
from .klipper_macros import MacroUnrenderable, assumed_body, call_params, expand
from .limits import prusa_kinematics_from_config
from .parse import GcodeInput, GcodeSource, iter_chunks
from .planner import FirmwarePlanner
from .prusa_planner import PrusaTimeMachine
from .words import FLAG_HOME, MACRO_CALLS, Chunk, Event, ParseState, split_words

MODES = ("marlin", "klipper", "prusa")
# commands the timeline reacts to (others, e.g. M204 or M73, do not split it)
_TIMELINE_CMDS = (
    frozenset(
        {
            "M104",
            "M109",
            "M140",
            "M190",
            "M106",
            "M107",
            "M18",
            "M84",
            "G4",
            "G28",
            "G29",
            "G80",
            "BED_MESH_CALIBRATE",
            "ESTIMATOR_ADD_TIME",
            "SET_HEATER_TEMPERATURE",
        }
    )
    | MACRO_CALLS
)


@dataclass
class GcodeResult:
    path: str
    mode: str
    machine: str
    time_s: float  # everything: motion + waits + dwell + homing/levelling
    print_time_s: float  # motion only (what slicers estimate)
    filament_mm: float
    filament_by_feature_mm: dict[str, float]
    time_by_feature_s: dict[str, float]
    time_by_phase_s: dict[str, float]
    energy_by_component_j: dict[str, float]
    energy_j: float
    n_lines: int
    n_moves: int
    unknown_commands: dict[str, int]
    warnings: list[str]
    timeline: list[TimelineRow] = field(default_factory=list)
    duration_s: np.ndarray | None = None  # per move row (keep_rows=True)
    events: list[Event] = field(default_factory=list)
    slicer_estimate_s: float | None = None
    layers: int = 0
    energy_by_phase_j: dict[str, float] = field(default_factory=dict)

    def to_estimate(self, machine: FdmMachine) -> Estimate:
        return Estimate(
            process="fdm",
            machine=self.machine,
            time_s=self.time_s,
            energy_j=self.energy_j,
            time_by_phase_s=dict(self.time_by_phase_s),
            energy_by_phase_j=dict(self.energy_by_phase_j),
            time_by_feature_s=dict(self.time_by_feature_s),
            energy_by_component_j=dict(self.energy_by_component_j),
            material_g=machine.filament.mass_g(self.filament_mm),
            settings={"gcode": self.path, "planner": self.mode},
            provenance={
                "profile": machine.path,
                "kind": "calibrated" if machine.calibrated else "default",
            },
            extra={
                "print_time_s": self.print_time_s,
                "filament_mm": self.filament_mm,
                "slicer_estimate_s": self.slicer_estimate_s,
                "unknown_commands": dict(self.unknown_commands),
                "layers": self.layers,
            },
        )


def slicer_estimate_s(st: ParseState) -> float | None:
    """The slicer's own estimate written in the file (PrusaSlicer, OrcaSlicer, Bambu Studio,
    Simplify3D as '1h 2m 3s'; Cura and ideaMaker in seconds)."""
    txt = st.slicer_comments.get("estimated printing time (normal mode)")
    if txt:
        units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
        total = 0
        for tok in txt.split():
            if tok[:-1].isdigit() and tok[-1] in units:
                total += int(tok[:-1]) * units[tok[-1]]
        return float(total)
    secs = st.slicer_comments.get("time_s")
    return float(secs) if secs else None


class GcodeTimeline(Timeline):
    """The one timeline (:class:`slicer_energy.thermal.Timeline`) driven by G-code commands."""

    def __init__(self, m: FdmMachine, thermal: bool, keep_rows: bool, name: str = "") -> None:
        super().__init__(m, thermal, keep_rows)
        # what a Klipper printer.cfg's macros say some commands take (klipper_config)
        self.command_s = dict(getattr(m, "command_s", ()))
        self.macros = {mc.name: mc for mc in getattr(m, "macros", ())}
        self.name = name
        self.warnings: list[str] = []  # the macro bodies assumed

    def event(self, ev: Event) -> None:
        """One command the timeline reacts to (set points, waits, fan, steppers, dwells)."""
        c, p, m = ev.cmd, ev.params, self.m
        if c in ("M104", "M109", "M140", "M190"):
            self._heater(c, p)
        elif c == "SET_HEATER_TEMPERATURE":
            pass  # HEATER=name is a string; not resolvable without the macro context
        elif c == "M106":
            self.fan = (
                min(1.0, max(0.0, _val(p, "S", 255.0) / 255.0))
                if "P" not in p or _val(p, "P") == 0
                else self.fan
            )
        elif c == "M107":
            self.fan = 0.0
        elif c in ("M18", "M84"):
            self.steppers = False
        elif c == "G4":
            dwell = _val(p, "P") / 1000.0 if "P" in p else _val(p, "S")
            self.advance(dwell, "dwell", False)
        elif c == "G28":
            self.steppers = True
            self.advance(m.homing_s, "homing", True)
        elif c in ("G29", "G80", "BED_MESH_CALIBRATE"):
            self.advance(self.command_s.get(c, m.bed_leveling_s), "leveling", True)
        elif c == "ESTIMATOR_ADD_TIME":
            self.advance(_val(p, "S"), "dwell", False)
        elif c in MACRO_CALLS:
            self._macro(ev)

    def _macro(self, ev: Event) -> None:
        """A start/end macro call: the printer.cfg's body (:mod:`.klipper_macros`) when the
        config defines it and its template renders, else the conventional body its parameters
        name (an assumption, said in the warnings); its commands then run as the file's own."""
        params = call_params(ev.text)
        lines = why = None
        unrendered: list[str] = []
        if ev.cmd in self.macros:
            try:
                lines = expand(ev.cmd, params, self.macros, unrendered)
            except MacroUnrenderable as exc:
                why = f"its printer.cfg macro needs the printer's run-time state ({exc})"
        else:
            why = "no printer.cfg macro (give --printer-config)"
        if lines is None:
            lines = assumed_body(ev.cmd, params)
            self.warnings.append(
                f"{self.name}:{ev.line}: {ev.cmd}: {why}; assumed it runs {'; '.join(lines)}"
            )
        if unrendered:
            self.warnings.append(
                f"{self.name}:{ev.line}: {ev.cmd}: nested macros need the printer's run-time "
                f"state, run as plain commands: {'; '.join(unrendered)}"
            )
        st = ParseState(path=f"{self.name} ({ev.cmd} at line {ev.line})")
        for text in lines:
            cmd, p = split_words(st, text)
            if cmd in MACRO_CALLS:
                continue  # a start macro calling itself or another one it does not define
            if cmd in ("SET_HEATER_TEMPERATURE", "TEMPERATURE_WAIT", "TURN_OFF_HEATERS"):
                self._klipper_heater(cmd, call_params(text), st.path)
            elif cmd in _TIMELINE_CMDS:
                self.event(Event(ev.index, ev.line, cmd, p, text))

    def _klipper_heater(self, cmd: str, kw: dict[str, str], where: str) -> None:
        """Klipper's heater commands inside a macro (their HEATER/SENSOR are names)."""
        if cmd == "TURN_OFF_HEATERS":
            self.he_set = self.bed_set = 0.0
            return
        name = kw.get("HEATER", kw.get("SENSOR", "")).lower()
        hot = name == "extruder"
        if not hot and name != "heater_bed":
            return  # other heaters and sensors are not modelled
        try:
            value = float(kw.get("TARGET", kw.get("MINIMUM", "0")))
        except ValueError:
            raise GcodeError(f"{where}: {cmd}: {kw} is not a temperature") from None
        if cmd == "SET_HEATER_TEMPERATURE":
            if hot:
                self.he_set = value
            else:
                self.bed_set = value
        elif self.thermal:  # TEMPERATURE_WAIT MINIMUM=: heat at full power up to it
            model, cur, target = (
                (self.m.hotend, self.he_c, self.he_set)
                if hot
                else (self.m.bed, self.bed_c, self.bed_set)
            )
            if target < value:
                raise GcodeError(
                    f"{where}: TEMPERATURE_WAIT {name} MINIMUM={value:g} is above its set "
                    f"point {target:g}: Klipper would wait for ever"
                )
            self.advance(model.time_to_reach_s(cur, value), "wait", False)

    def _heater(self, c: str, p: dict[str, float]) -> None:
        """M104/M109 (hotend) and M140/M190 (bed): a set point, and for M109/M190 a wait."""
        if c in ("M104", "M109"):
            if "T" in p and _val(p, "T") != 0:
                return  # other tools are not modelled
            if "S" in p or "R" in p:
                self.he_set = _val(p, "S") if "S" in p else _val(p, "R")
            if c == "M109" and self.thermal:
                self.wait("hotend", cool_ok="R" in p)
        else:
            if "S" in p or "R" in p:
                self.bed_set = _val(p, "S") if "S" in p else _val(p, "R")
            if c == "M190" and self.thermal:
                self.wait("bed", cool_ok="R" in p)


def _val(p: dict[str, float], key: str, default: float = 0.0) -> float:
    """A command's parameter; ``default`` when absent or NaN (a bare letter)."""
    v = p.get(key, default)
    return default if v != v else v


def _planner(mode: str, machine: FdmMachine, src: GcodeInput, jit: bool = False):
    if mode == "prusa":
        cfg = src.footer_config()
        try:
            kin = prusa_kinematics_from_config(cfg) or machine.kinematics
        except GcodeError as exc:  # the block has no line numbers of its own
            raise GcodeError(f"{src.name}: {exc}") from None
        flavor = cfg.get("gcode_flavor", "marlin")
        return PrusaTimeMachine(
            kin, flavor_mm_s=flavor in ("marlin", "marlin2", "smoothie"), jit=jit
        )
    return FirmwarePlanner(machine.kinematics, mode, jit=jit)


class _Totals:
    """Per-move durations as the planner commits them, summed in move order.

    A chunk waits in ``pending`` until its last move's time is final; then its moves
    are summed by feature (extrusion, travel, retraction, filament) and played through
    the timeline, cut at its events and layer changes.
    """

    def __init__(self, tl: GcodeTimeline, keep_rows: bool) -> None:
        self.tl = tl
        self.keep_rows = keep_rows
        self.pending: deque = deque()  # (chunk, durations), oldest first
        self.kept_dur: list[np.ndarray] = []
        self.feat_t: dict[int, float] = {}
        self.feat_fil: dict[int, float] = {}
        self.travel_t = self.retract_t = self.filament = 0.0
        self.last = [0.0, 0.0, 0.0]  # end of the last move consumed

    def add(self, chunk: Chunk) -> None:
        self.pending.append((chunk, np.zeros(len(chunk.moves))))

    def scatter(self, rows: np.ndarray, ts: np.ndarray) -> None:
        """Write committed move times (global rows) into the pending chunks."""
        if len(rows) == 0:
            return
        for ch, dur in self.pending:
            lo, hi = ch.start, ch.start + len(ch.moves)
            m = (rows >= lo) & (rows < hi)
            if m.any():
                dur[rows[m] - lo] = ts[m]

    def release(self, upto: int | None) -> None:
        """Consume the pending chunks whose moves all lie before row ``upto`` (None: all)."""
        while self.pending:
            ch, dur = self.pending[0]
            end = ch.start + len(ch.moves)
            if upto is not None and end > upto:
                return
            self.pending.popleft()
            self._consume(ch, dur)

    def _consume(self, ch: Chunk, dur: np.ndarray) -> None:
        mv = ch.moves
        if self.keep_rows:
            self.kept_dur.append(dur)
        last = self.last
        moving_xy = (np.diff(np.concatenate(([last[0]], mv.x))) != 0) | (
            np.diff(np.concatenate(([last[1]], mv.y))) != 0
        )
        dz = np.diff(np.concatenate(([last[2]], mv.z)))
        if len(mv):
            last[:] = [mv.x[-1], mv.y[-1], mv.z[-1]]
        extr = (mv.de > 0) & moving_xy
        self.filament += float(mv.de[extr].sum())
        fil_f = np.bincount(mv.feature[extr].astype(np.int64), weights=mv.de[extr])
        _add_by_index(self.feat_fil, fil_f)
        e_only = ~moving_xy & (dz == 0) & (mv.de != 0)
        travel = ~extr & ~e_only
        self.travel_t += float(dur[travel].sum())
        self.retract_t += float(dur[e_only].sum())
        _add_by_index(
            self.feat_t, np.bincount(mv.feature[extr].astype(np.int64), weights=dur[extr])
        )
        self._play(ch, dur, extr)

    def _play(self, ch: Chunk, dur: np.ndarray, extr: np.ndarray) -> None:
        """The chunk through the timeline: intervals split at events and layer changes."""
        tl, mv = self.tl, ch.moves
        cum = np.concatenate(([0.0], np.cumsum(dur)))
        ecum = np.concatenate(([0.0], np.cumsum(np.where(extr, mv.de, 0.0))))
        evs = sorted((e for e in ch.events if e.cmd in _TIMELINE_CMDS), key=lambda e: e.index)
        cuts = sorted(
            {0, len(mv)}
            | set(np.flatnonzero(np.diff(mv.layer) != 0) + 1)
            | {min(max(e.index - ch.start, 0), len(mv)) for e in evs}
        )
        ei = 0
        for a, b in zip(cuts[:-1], cuts[1:], strict=False):
            while ei < len(evs) and evs[ei].index - ch.start <= a:
                tl.event(evs[ei])
                ei += 1
            if b > a:
                tl.layer = int(mv.layer[b - 1])
                tl.z = float(mv.z[b - 1])
                if (mv.flags[a:b] & FLAG_HOME).any():
                    tl.steppers = True
                tl.steppers = True if cum[b] > cum[a] else tl.steppers
                tl.advance(float(cum[b] - cum[a]), "motion", True, float(ecum[b] - ecum[a]))
        while ei < len(evs):
            tl.event(evs[ei])
            ei += 1

    def by_feature(self, names: list[str]) -> dict[str, float]:
        """Motion seconds per feature name, plus 'travel' and 'retract'."""
        out = {names[i]: v for i, v in sorted(self.feat_t.items())}
        if self.travel_t:
            out["travel"] = out.get("travel", 0.0) + self.travel_t
        if self.retract_t:
            out["retract"] = out.get("retract", 0.0) + self.retract_t
        return out


def _add_by_index(acc: dict[int, float], sums: np.ndarray) -> None:
    for i, v in enumerate(sums):
        if v:
            acc[i] = acc.get(i, 0.0) + float(v)


def analyze_file(
    path: GcodeSource,
    machine: FdmMachine,
    mode: str | None = None,
    thermal: bool = True,
    keep_rows: bool = True,
    timeline: bool = False,
    chunk_lines: int = 200_000,
    jit: bool | None = None,
) -> GcodeResult:
    """Plan and integrate one G-code file (or stream, or lines: see :class:`.GcodeInput`).

    ``mode`` defaults to the machine's firmware.

    ``prusa`` reads the limits from the file's PrusaSlicer config block when there
    is one (as PrusaSlicer does when it loads G-code), else from ``machine``.
    ``jit`` runs the compiled kernels of :mod:`._jit` (same results); None decides
    by file size (environment SLICER_ENERGY_JIT=0/1 overrides).
    """
    mode = mode or machine.firmware
    if mode not in MODES:
        raise GcodeError(f"unknown planner mode {mode!r}; choose one of {', '.join(MODES)}")
    src = GcodeInput.of(path)
    jit = want_jit(src.size_bytes(), jit, JIT_MIN_BYTES_PRUSA if mode == "prusa" else JIT_MIN_BYTES)
    tl = GcodeTimeline(machine, thermal, timeline, src.name)
    if mode == "prusa":  # a faithful copy of PrusaSlicer's estimate takes no calibration
        tl.time_scale, tl.wait_extra_s = 1.0, 0.0
    totals = _Totals(tl, keep_rows)
    planner = None
    events_all: list[Event] = []
    st: ParseState | None = None
    n_moves = 0
    for chunk, state in iter_chunks(src, chunk_lines, jit=jit):
        st = state
        if planner is None:
            planner = _planner(mode, machine, src, jit)
        if st.bad_feeds and mode == "klipper":
            raise GcodeError(
                f"{src.name}:{st.bad_feed_line}: F{st.bad_feed_value:g}: Klipper stops the print "
                "here ('Invalid speed'); a feedrate must be > 0"
            )
        n_moves += len(chunk.moves)
        if keep_rows:
            events_all.extend(chunk.events)
        totals.add(chunk)
        if mode == "prusa":
            planner.moves(chunk.moves, chunk.start, chunk.events)
            rows, ts = planner.pop_commits()
        else:
            rows, ts = planner.feed(chunk.moves, chunk.start, chunk.events)
        totals.scatter(rows, ts)
        totals.release(planner.pending_row())
    if st is None or planner is None:
        raise GcodeError(f"{src.name}: empty file")
    if mode == "prusa":
        planner.finish()
        rows, ts = planner.pop_commits()
    else:
        rows, ts = planner.finish()
    totals.scatter(rows, ts)
    totals.release(None)
    if n_moves == 0:
        raise GcodeError(f"{src.name}: no moves (G0/G1/G2/G3) found; is this G-code?")
    names = st.features
    by_feature = totals.by_feature(names)
    return GcodeResult(
        path=src.name,
        mode=mode,
        machine=machine.name,
        time_s=tl.t,
        print_time_s=float(sum(by_feature.values())),
        filament_mm=totals.filament,
        filament_by_feature_mm={names[i]: v for i, v in sorted(totals.feat_fil.items())},
        time_by_feature_s=by_feature,
        time_by_phase_s={k: v for k, v in tl.phase.items() if v},
        energy_by_phase_j=dict(tl.phase_energy),
        energy_by_component_j=dict(tl.comp),
        energy_j=float(sum(tl.comp.values())),
        n_lines=st.line,
        n_moves=n_moves,
        unknown_commands=dict(st.unknown),
        warnings=_warnings(src.name, st) + tl.warnings,
        timeline=tl.rows,
        duration_s=np.concatenate(totals.kept_dur) if keep_rows and totals.kept_dur else None,
        events=events_all,
        slicer_estimate_s=slicer_estimate_s(st),
        layers=int(tl.layer),
    )


def _warnings(name: str, st: ParseState) -> list[str]:
    """The parser's warnings, then one for ignored F <= 0 words and one per unknown command."""
    warnings = list(st.warnings)
    if st.bad_feeds:  # Marlin's get_destination_from_command: 'if (F > 0) feedrate = F'
        more = f" and {st.bad_feeds - 1} more F <= 0" if st.bad_feeds > 1 else ""
        warnings.append(
            f"{name}:{st.bad_feed_line}: F{st.bad_feed_value:g}{more} ignored: the feedrate "
            "is kept, as Marlin does (Klipper would stop the print)"
        )
    for cmd, cnt in sorted(st.unknown.items()):
        warnings.append(
            f"{name}:{st.unknown_first_line[cmd]}: unknown command {cmd} "
            f"(ignored, {cnt} time{'s' if cnt > 1 else ''})"
        )
    return warnings
