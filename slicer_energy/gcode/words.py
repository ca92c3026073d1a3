"""G-code words and the parser state they change: the layer both parsers share.

The per-line loop (:mod:`.lineloop`) and the vectorised block parser
(:mod:`.fastparse`) read lines differently but apply them the same way: they split a
command into words (:func:`split_words`), let comments set the feature, layer and
wipe state (:func:`apply_comment`) and let every non-move command change the modal
state or become an :class:`Event` (:func:`apply_command`). Those handlers, the modal
:class:`ParseState` and the :class:`Moves` / :class:`Event` records live here, so
that both parsers import them and neither imports the other's internals.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import GcodeError
from .klipper_macros import END_MACROS, START_MACROS

# Move flags (bit field in Moves.flags).
FLAG_WIPE = 1  # inside ;WIPE_START/;WIPE_END (PrusaSlicer)
FLAG_ARC = 2  # segment of a G2/G3 arc (PrusaSlicer 2.5 ignores these)
FLAG_HOME = 4  # the G28 move PrusaSlicer simulates (firmwares home instead)

# Commands that change nothing we model; they are accepted silently.
_IGNORED = frozenset(
    "G21 G80_ M0_ M17 M31 M75 M76 M77 M78 M80 M81 M105 M110 M111 M113 M114 M115 M117 M118 "
    "M119 M120 M121 M150 M155 M163 M164 M260 M261 M280 M290 M300 M350 M351 M355 M360 M361 "
    "M362 M363 M364 M401 M402 M404 M405 M406 M407 M412 M413 M420 M422 M428 M500 M501 M502 "
    "M503 M504 M540 M569 M575 M851 M862.1 M862.2 M862.3 M862.4 M862.5 M862.6 M900 M907 "
    "M908 M909 M910 M911 M912 M913 M914 M915 M916 M917 M918 M928 M997 M999 M486 M141 M191 "
    "M142 M145 M149 M122 M92 M206 M207 M208 M209 M211 M82_ M25 M24 M23 M20 M21 M22 M27 M28 "
    "M29 M30 M32 M33 M34 M42 M43 M48 M106_ M112 M703 M701 M702_ M104.1 M125 M600_ M601 "
    "M602 M1001 M1002 M1003 G53 G54 G55 G56 G57 G58 G59 G90.1 G91.1 G17 G18 G19 G31 G32 "
    "G34 G35 G38.2 G38.3 G42 G60 G61 G76 G81 M108 M876".split()
)

# Commands that become events (the planners and the timeline interpret them).
_EVENT_CMDS = frozenset(
    "G4 G10 G11 G29 G80 M0 M1 M18 M84 M104 M109 M140 M190 M106 M107 M201 M203 M204 M205 "
    "M220 M221 M400 M566 M600 M702 M73 BED_MESH_CALIBRATE SET_VELOCITY_LIMIT "
    "TEMPERATURE_WAIT SET_HEATER_TEMPERATURE SET_FAN_SPEED M190.1 G28".split()
)
# Klipper start/end macro calls: events too (the timeline expands them, klipper_macros);
# their NAME=value strings are not numbers, so they are not read strictly.
MACRO_CALLS = START_MACROS | END_MACROS

# Largest coordinate, extrusion step, arc radius or offset accepted (mm). No printer
# moves a kilometre; beyond it squared distances lose their precision or overflow, and
# the planners return 0 s or infinity instead of an error.
MAX_ABS_MM = 1e6
# Longest single G2/G3 arc (mm): each millimetre becomes one planned chord.
MAX_ARC_MM = 1e5

# Largest parameter of a non-move command (°C, %, mm/s, mm/s², s, ms): beyond it a
# dwell or a heat-up lasts for ever and the timeline overflows.
MAX_PARAM = 1e7
# Parameters that set a speed, an acceleration or a speed factor: zero stops the printer
# for good (Klipper refuses them, 'above=0.'); the motion-limit commands take no negatives.
_POSITIVE = {"M203": "XYZE", "M220": "S", "SET_VELOCITY_LIMIT": ("VELOCITY",)}
_NON_NEGATIVE = frozenset({"M201", "M203", "M204", "M205", "M220", "M221", "M566"})


@dataclass
class Event:
    """A non-move command: ``index`` is the number of moves before it (global)."""

    index: int
    line: int
    cmd: str
    params: dict[str, float] = field(default_factory=dict)
    text: str = ""


@dataclass
class Moves:
    """Rows of moves; positions are physical (G92 offsets applied), millimetres."""

    line: np.ndarray  # int64, 1-based source line
    x: np.ndarray  # float64 end position
    y: np.ndarray
    z: np.ndarray
    de: np.ndarray  # float64 filament increment (mm, signed)
    f: np.ndarray  # float64 commanded feedrate (mm/s)
    feature: np.ndarray  # int16 index into ParseState.features
    layer: np.ndarray  # int32 layer counter (0 before the first layer mark)
    flags: np.ndarray  # uint8 FLAG_*

    def __len__(self) -> int:
        return len(self.x)

    @staticmethod
    def concat(parts: list[Moves]) -> Moves:
        if not parts:
            return Moves.empty()
        return Moves(
            *(np.concatenate([getattr(p, n) for p in parts]) for n in Moves.__dataclass_fields__)
        )

    @staticmethod
    def empty() -> Moves:
        return Moves(
            np.zeros(0, np.int64),
            *(np.zeros(0) for _ in range(5)),
            np.zeros(0, np.int16),
            np.zeros(0, np.int32),
            np.zeros(0, np.uint8),
        )

    def take(self, sl) -> Moves:
        return Moves(*(getattr(self, n)[sl] for n in Moves.__dataclass_fields__))


@dataclass
class Chunk:
    moves: Moves
    start: int  # global index of moves[0]
    events: list[Event]


@dataclass
class ParseState:
    """Modal state carried across lines and chunks; also the file's summary."""

    path: str = "<gcode>"
    line: int = 0
    n_moves: int = 0
    abs_xyz: bool = True
    abs_e: bool = True
    inches: bool = False
    # physical position and G92 origin
    pos: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])
    origin: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])
    f_mm_s: float = 25.0  # modal feedrate before any F word (Klipper's default)
    feature: int = 0
    layer: int = 0
    wiping: bool = False
    features: list[str] = field(default_factory=lambda: ["unknown"])
    feature_ids: dict[str, int] = field(default_factory=lambda: {"unknown": 0})
    unknown: dict[str, int] = field(default_factory=dict)  # command -> count
    unknown_first_line: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    slicer_comments: dict[str, str] = field(default_factory=dict)  # footer key = value
    producer: str = ""
    # F words <= 0: Marlin ignores them (keeps the feedrate), Klipper stops the print
    bad_feeds: int = 0
    bad_feed_line: int = 0  # the first one
    bad_feed_value: float = 0.0

    def feature_id(self, name: str) -> int:
        i = self.feature_ids.get(name)
        if i is None:
            i = self.feature_ids[name] = len(self.features)
            self.features.append(name)
        return i


def normalize_feature(raw: str) -> str:
    """'External perimeter' / 'WALL-OUTER' -> 'external_perimeter' / 'wall_outer'."""
    s = raw.strip().lower()
    return re.sub(r"[^a-z0-9]+", "_", s).strip("_") or "unknown"


# Other slicers' names mapped to PrusaSlicer's vocabulary (fdm/features.py FEATURES plus
# PrusaSlicer's own G-code-only roles: gap fill, overhang perimeter, wipe tower, ironing):
# Cura ';TYPE:WALL-OUTER', ideaMaker ';TYPE:SOLID-FILL', Simplify3D '; outer perimeter' /
# '; feature outer perimeter', Bambu Studio / OrcaSlicer '; FEATURE: Sparse infill'.
_FEATURE_ALIASES = {
    # Cura, ideaMaker
    "wall_outer": "external_perimeter",
    "wall_inner": "perimeter",
    "skin": "solid_infill",
    "fill": "internal_infill",
    "solid_fill": "solid_infill",
    "support": "support_material",
    "support_interface": "support_material_interface",
    "support_infill": "support_material",
    "skirt": "skirt_brim",
    "brim": "skirt_brim",
    "raft": "support_material",  # PrusaSlicer prints a raft as support layers
    "prime_tower": "wipe_tower",
    "bridge": "bridge_infill",
    # Simplify3D
    "outer_perimeter": "external_perimeter",
    "inner_perimeter": "perimeter",
    "solid_layer": "solid_infill",
    "infill": "internal_infill",
    "dense_support": "support_material_interface",
    "prime_pillar": "wipe_tower",
    # Bambu Studio / OrcaSlicer
    "outer_wall": "external_perimeter",
    "inner_wall": "perimeter",
    "overhang_wall": "overhang_perimeter",
    "sparse_infill": "internal_infill",
    "internal_solid_infill": "solid_infill",
    "top_surface": "top_solid_infill",
    "bottom_surface": "solid_infill",
    "internal_bridge": "internal_bridge_infill",
    "gap_infill": "gap_fill",
    "support_transition": "support_material",
}
# Simplify3D before 4.0 names the feature alone in a comment ('; outer perimeter')
_S3D_FEATURES = frozenset(
    ("outer perimeter", "inner perimeter", "infill", "solid layer", "gap fill", "skirt",
     "support", "dense support", "bridge", "prime pillar", "ooze shield", "raft")
)  # fmt: skip


@functools.lru_cache(maxsize=4096)  # a file repeats a handful of ';TYPE:' lines
def _feature_from_comment(c: str) -> str | None:
    if c.startswith("TYPE:"):
        name = normalize_feature(c[5:])
    elif c.startswith(" FEATURE: "):  # Bambu Studio, OrcaSlicer
        name = normalize_feature(c[10:])
    elif c.startswith(" feature "):  # Simplify3D 4+
        name = normalize_feature(c[9:])
    elif c[1:].rstrip() in _S3D_FEATURES and c.startswith(" "):  # Simplify3D 3
        name = normalize_feature(c)
    else:
        return None
    return _FEATURE_ALIASES.get(name, name)


def line_error(state: ParseState, text: str, what: str) -> GcodeError:
    """The error for the current line, named by file and line number."""
    return GcodeError(f"{state.path}:{state.line}: {what}: {text.rstrip()!r}")


_STRICT = frozenset({"G0", "G1", "G2", "G3", "G4", "G92", "G10", "G11"}) | _EVENT_CMDS - {"M73"}


def split_words(state: ParseState, body: str, strict: bool = False) -> tuple[str, dict[str, float]]:
    """Split 'G1 X1 Y2' into ('G1', {'X': 1.0, 'Y': 2.0}); strict about numbers."""
    parts = body.split()
    cmd = parts[0].upper()
    params: dict[str, float] = {}
    if len(cmd) > 1 and cmd[0] in "GMT" and not _is_number(cmd[1:]):
        # compact form 'G1X10Y5' (no spaces)
        m = re.match(r"([GMT]\d+(?:\.\d+)?)(.*)", cmd)
        if not m:
            return cmd, params  # a macro name such as 'TEMPERATURE_WAIT'
        cmd, rest = m.group(1), m.group(2)
        parts = [cmd, *re.findall(r"[A-Z][^A-Z]*", rest), *parts[1:]]
    for w in parts[1:]:
        k = w[0].upper()
        v = w[1:]
        if "=" in w:  # Klipper 'ACCEL=3000'
            k2, _, v2 = w.partition("=")
            try:
                params[k2.upper()] = float(v2)
            except ValueError:
                params[k2.upper()] = math.nan
            continue
        if not v:
            params[k] = math.nan  # bare letter: 'G28 X'
            continue
        try:
            x = float(v)
        except ValueError:
            x = math.nan
        else:
            if math.isfinite(x):
                params[k] = x
                continue
            if strict or cmd in _STRICT:  # 'inf', 'nan', '1e999'
                raise line_error(state, body, f"{k} is not a finite number ({w!r})") from None
        if strict or cmd in _STRICT:
            raise line_error(state, body, f"malformed number {w!r}") from None
        params[k] = math.nan  # string argument of a command we do not interpret
    return cmd, params


def bad_feed(st: ParseState, f_mm_min: float, text: str) -> None:
    """An F word that is not > 0: keep the feedrate (Marlin) and count it; NaN is an error."""
    if math.isnan(f_mm_min):
        raise line_error(st, text, "F is not a number")
    if not st.bad_feeds:
        st.bad_feed_line, st.bad_feed_value = st.line, f_mm_min
    st.bad_feeds += 1


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def apply_comment(st: ParseState, c: str, events: list[Event]) -> None:
    """A comment (text after ';') that sets the feature, layer, wipe state or a footer value."""
    feat = _feature_from_comment(c)
    if feat is not None:
        st.feature = st.feature_id(feat)
        return
    if (
        c.startswith("LAYER_CHANGE")
        or c.startswith("LAYER:")
        or c.startswith(" CHANGE_LAYER")  # Bambu Studio, OrcaSlicer
        or (c.startswith(" layer ") and not c.startswith(" layer end"))  # Simplify3D
    ):
        st.layer += 1
    elif c.startswith("WIPE_START"):
        st.wiping = True
    elif c.startswith("WIPE_END"):
        st.wiping = False
    elif c.startswith("COLOR_CHANGE") or c.startswith("PAUSE_PRINT"):
        events.append(Event(st.n_moves, st.line, ";" + c.split()[0]))
    elif c.startswith(" ESTIMATOR_ADD_TIME"):
        try:
            secs = float(c.split()[1])
        except (IndexError, ValueError):
            raise line_error(st, c, "ESTIMATOR_ADD_TIME needs seconds") from None
        if not 0 <= secs < 1e7:
            raise line_error(st, c, "ESTIMATOR_ADD_TIME needs seconds between 0 and 1e7")
        events.append(Event(st.n_moves, st.line, "ESTIMATOR_ADD_TIME", {"S": secs}))
    elif _estimate_comment(st, c):
        pass
    elif c.startswith(" ") and " = " in c:
        k, _, v = c[1:].partition(" = ")
        st.slicer_comments[k.strip()] = v.strip()
    elif c.startswith("Generated with") or c.startswith("Sliced by") or c.startswith("FLAVOR:"):
        st.producer = st.producer or c.strip()
    elif c.startswith(" generated by"):
        st.producer = st.producer or c.strip()


def _estimate_comment(st: ParseState, c: str) -> bool:
    """Read a slicer's time estimate: Cura ';TIME:6142' and ideaMaker ';Print Time: 1283' (s)
    as ``time_s``; Simplify3D ';   Build time: 1 hours 2 minutes' and Bambu Studio / OrcaSlicer
    '; model printing time: 5m 44s; total estimated time: 11m 33s' (the whole job) as
    PrusaSlicer's "estimated printing time (normal mode)" = '1h 2m'. False for other comments."""
    for head in ("TIME:", "Print Time:"):
        if c.startswith(head) and c[len(head) :].strip().replace(".", "", 1).isdigit():
            st.slicer_comments.setdefault("time_s", c[len(head) :].strip())
            return True
    if c.lstrip().startswith("Build time:"):  # ';   Build time: …' in its Build Summary
        words = c.lstrip()[11:].replace(",", " ").split()
        pairs = zip(words, words[1:], strict=False)
        text = " ".join(f"{n}{u[0]}" for n, u in pairs if n.isdigit() and u in _S3D_UNITS)
    elif c.startswith(" model printing time:"):
        text = c.partition("total estimated time:")[2].strip()
    else:
        return False
    if text:
        st.slicer_comments.setdefault("estimated printing time (normal mode)", text)
    return True


_S3D_UNITS = frozenset(("hour", "hours", "minute", "minutes", "second", "seconds"))


# The mode commands: which ParseState flag each sets, and to what.
MODE_SETS = {
    "G90": ("abs_xyz", True),
    "G91": ("abs_xyz", False),
    "M82": ("abs_e", True),
    "M83": ("abs_e", False),
    "G20": ("inches", True),
    "G21": ("inches", False),
}

# add_move(x, y, z, de, flags): append one row to the caller's moves
AddMove = Callable[[float, float, float, float, int], None]


def apply_command(
    st: ParseState,
    cmd: str,
    p: dict[str, float],
    text: str,
    events: list[Event],
    add_move: AddMove | None,
) -> None:
    """Apply one non-comment command: a mode, an offset, an event, or (G0-G3, G28) moves.

    ``add_move`` may be None where the caller has taken the moves out first (the
    fast parser hands only non-move commands over).
    """
    if cmd in ("G2", "G3"):
        _arc(st, cmd, p, text, add_move)
    elif cmd in ("G0", "G1"):  # slow path (N-prefixed, lowercase, compact)
        _slow_move(st, p, add_move)
    elif cmd == "G28":
        events.append(Event(st.n_moves, st.line, cmd, p, text))
        _home(st, p, add_move)
    elif cmd in MODE_SETS:
        setattr(st, *MODE_SETS[cmd])
    elif cmd == "G92":
        _set_origin(st, p, text)
        events.append(Event(st.n_moves, st.line, cmd, p, text))
    elif cmd in _EVENT_CMDS or cmd.startswith("T") and cmd[1:].isdigit():
        if p and cmd != "M73":
            _check_event(st, cmd, p, text)
        events.append(Event(st.n_moves, st.line, cmd, p, text))
    elif cmd in MACRO_CALLS:
        events.append(Event(st.n_moves, st.line, cmd, p, text))
    elif cmd in _IGNORED or cmd.startswith("EXCLUDE_OBJECT"):
        pass
    else:
        if cmd not in st.unknown:
            st.unknown_first_line[cmd] = st.line
        st.unknown[cmd] = st.unknown.get(cmd, 0) + 1


def _home(st: ParseState, p: dict[str, float], add_move: AddMove) -> None:
    """G28 as PrusaSlicer simulates it: a G1 to 0 on the named axes (or all)."""
    pos, origin = st.pos, st.origin
    axes = [a for a in "XYZ" if a in p] or ["X", "Y", "Z"]
    for i, a in enumerate("XYZ"):
        if a in axes:
            pos[i] = origin[i] + 0.0 if st.abs_xyz else pos[i]
    add_move(pos[0], pos[1], pos[2], 0.0, FLAG_HOME)


def _set_origin(st: ParseState, p: dict[str, float], text: str) -> None:
    """G92: the named axes (all when none is named) read as the given values from here on."""
    pos, origin = st.pos, st.origin
    scale = 25.4 if st.inches else 1.0
    if any(abs(p.get(a, 0.0)) > MAX_ABS_MM for a in "XYZE"):
        raise line_error(st, text, f"G92 beyond ±{MAX_ABS_MM:g} mm")
    for i, a in enumerate("XYZE"):
        if a in p and not math.isnan(p[a]):
            origin[i] = pos[i] - p[a] * scale
    if not any(a in p for a in "XYZE"):
        origin[:] = pos[:]


def _check_event(st: ParseState, cmd: str, p: dict[str, float], text: str) -> None:
    """Refuse parameters no printer can follow (a dwell of 1e300 ms, a speed factor of 0)."""
    for k, v in p.items():
        if abs(v) > MAX_PARAM:  # False for NaN: a bare letter or a string argument
            raise line_error(st, text, f"{k} = {v:g} is out of range (at most {MAX_PARAM:g})")
        if v < 0 and (cmd in _NON_NEGATIVE or cmd == "SET_VELOCITY_LIMIT"):
            raise line_error(st, text, f"{k} = {v:g} must not be negative")
    for k in _POSITIVE.get(cmd, ()):
        if p.get(k) == 0:
            raise line_error(st, text, f"{k} = 0 would stop the printer for good; accepted: > 0")
    ratio = p.get("MINIMUM_CRUISE_RATIO", 0.0)
    if cmd == "SET_VELOCITY_LIMIT" and not 0 <= ratio < 1:
        raise line_error(st, text, "MINIMUM_CRUISE_RATIO must be in [0, 1)")
    if p.get("ACCEL_TO_DECEL", 1.0) == 0:
        raise line_error(st, text, "ACCEL_TO_DECEL = 0; accepted: > 0")


def set_feed(st: ParseState, f_mm_min: float, text: str) -> None:
    """An F word (mm/min): the new modal feedrate, or a counted bad one (see bad_feed)."""
    if f_mm_min > 0:
        st.f_mm_s = f_mm_min / 60.0
    else:
        bad_feed(st, f_mm_min, text)


def _slow_move(st: ParseState, p: dict[str, float], add_move: AddMove) -> None:
    pos = st.pos
    if any(math.isnan(p.get(a, 0.0)) for a in "XYZEF"):
        raise GcodeError(f"{st.path}:{st.line}: axis word without a number")
    sc = 25.4 if st.inches else 1.0
    if "F" in p:
        set_feed(st, p["F"] * sc, "G1")
    new, de = _end_point(st, p, sc)
    pos[0], pos[1], pos[2] = new
    pos[3] += de
    add_move(new[0], new[1], new[2], de, FLAG_WIPE if st.wiping else 0)


def _end_point(st: ParseState, p: dict[str, float], sc: float) -> tuple[list[float], float]:
    """Where a G0-G3 line ends (physical X, Y, Z) and its filament step, in the current modes."""
    pos, origin = st.pos, st.origin
    new = list(pos[:3])
    for i, a in enumerate("XYZ"):
        if a in p:
            new[i] = origin[i] + p[a] * sc if st.abs_xyz else pos[i] + p[a] * sc
    de = 0.0
    if "E" in p:
        de = origin[3] + p["E"] * sc - pos[3] if (st.abs_e and st.abs_xyz) else p["E"] * sc
    return new, de


def _arc(st: ParseState, cmd: str, p: dict[str, float], text: str, add_move: AddMove) -> None:
    """G2/G3 as 1 mm chords (Marlin MM_PER_ARC_SEGMENT, Klipper resolution 1 mm)."""
    pos = st.pos
    sc = 25.4 if st.inches else 1.0
    if "F" in p:
        set_feed(st, p["F"] * sc, text)
    if any(abs(p.get(k, 0.0)) > MAX_ABS_MM for k in "IJR"):
        raise line_error(st, text, f"arc centre or radius beyond ±{MAX_ABS_MM:g} mm")
    x0, y0, z0 = pos[0], pos[1], pos[2]
    tgt, de = _end_point(st, p, sc)
    if "R" in p and "I" not in p and "J" not in p:
        r = p["R"] * sc
        dx, dy = tgt[0] - x0, tgt[1] - y0
        d = math.hypot(dx, dy)
        if d == 0 or abs(r) < d / 2:
            raise line_error(st, text, "arc radius too small for its end point")
        h = math.sqrt(max(r * r - d * d / 4, 0.0))
        sgn = (1 if cmd == "G3" else -1) * (1 if r > 0 else -1)
        cx = x0 + dx / 2 - sgn * h * dy / d
        cy = y0 + dy / 2 + sgn * h * dx / d
    else:
        cx = x0 + p.get("I", 0.0) * sc
        cy = y0 + p.get("J", 0.0) * sc
    r0 = math.hypot(x0 - cx, y0 - cy)
    a0 = math.atan2(y0 - cy, x0 - cx)
    a1 = math.atan2(tgt[1] - cy, tgt[0] - cx)
    sweep = a1 - a0
    if cmd == "G2":
        if sweep >= 0:
            sweep -= 2 * math.pi
    elif sweep <= 0:
        sweep += 2 * math.pi
    length = abs(sweep) * r0
    if not length <= MAX_ARC_MM:
        raise line_error(st, text, f"arc of {length:g} mm (at most {MAX_ARC_MM:g} mm accepted)")
    n = max(1, int(length))  # ~1 mm chords
    for k in range(1, n + 1):
        t = k / n
        if k == n:
            x, y = tgt[0], tgt[1]
        else:
            x = cx + r0 * math.cos(a0 + sweep * t)
            y = cy + r0 * math.sin(a0 + sweep * t)
        z = z0 + (tgt[2] - z0) * t
        add_move(x, y, z, de / n, FLAG_ARC | (FLAG_WIPE if st.wiping else 0))
    pos[0], pos[1], pos[2] = tgt
    pos[3] += de
