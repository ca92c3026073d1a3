"""Hidden physics of the virtual printer: parameters drawn from sourced ranges, heaters under
PI control, wall power, and the clocks that drive them.

The equations are :mod:`.truth`'s (two-node heaters with nonlinear loss, a load-dependent
supply, a nonlinear fan), deliberately richer than the first-order model of
:mod:`slicer_energy.thermal` that calibration fits. A printer seed draws one set of
parameters (:func:`draw_printer`); :meth:`PrinterParams.effective` gives the first-order
equivalents a calibration is checked against.
"""

from __future__ import annotations

import collections
import contextlib
import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from threading import Event

from .truth import Electrical, Heater, Psu

# Ranges the hidden parameters are drawn from, each with where it comes from
# (../shared/reference/machine-data.md and ../shared/corpus/power/README.md).
PARAM_RANGES: dict[str, tuple[float, float, str]] = {
    "hotend_p_max_w": (
        35.0,
        50.0,
        "Prusa-Firmware@0c9bf5d thermal_model/e3d_v6.h L5 (38 W), e3d_REVO.h L5 (40 W); "
        "Prusa-Firmware-Buddy issue 4268 (50 W board limit)",
    ),
    "hotend_p_temp_coeff_per_k": (
        -0.0014,
        0.0,
        "Prusa-Firmware@0c9bf5d thermal model U: e3d_REVO.h L6 (-0.0014), e3d_v6.h L6 (0)",
    ),
    "hotend_r_k_per_w": (
        18.0,
        31.0,
        "at 215 C: Prusa-Firmware@0c9bf5d e3d_v6.h L10 (20.5 K/W), e3d_REVO_HF_60W.h (30.6 K/W)",
    ),
    "hotend_c_j_per_k": (
        8.5,
        12.5,
        "Prusa-Firmware@0c9bf5d e3d_REVO.h (8.77 J/K), e3d_v6.h L9 (12.1 J/K)",
    ),
    "hotend_rad_share": (
        0.05,
        0.20,
        "assumption: a 20x16x12 mm block at emissivity 0.1-0.3 radiates 0.4-1.3 W at 215 C "
        "of the 9.4 W lost at R 20.5 K/W; the rest convection and the heat break",
    ),
    "hotend_sensor_lag_s": (
        2.1,
        3.5,
        "Prusa-Firmware@0c9bf5d e3d_v6.h L13 (LAG 2100 ms); RRF M303 dead time 3.5 s "
        "(corpus power/notes/rrf_heater_models_prusa_mk3s_duet3.csv)",
    ),
    "bed_p_max_w": (
        100.0,
        220.0,
        "Prusa-Firmware-Buddy@818d812 selftest_MK4.cpp L157-158 (bed full-load window)",
    ),
    "bed_p_temp_coeff_per_k": (
        -0.0039,
        0.0,
        "assumption: copper-trace PCB bed, resistance +0.393 %/K (annealed copper, IEC 60028), "
        "so power at fixed voltage falls; 0 for a NiCr/constantan foil pad",
    ),
    "bed_gain_k": (
        110.0,
        180.0,
        "steady rise at full power P*R at 60 C: RRF M303 on a MK3S bed, 155.3 K "
        "(corpus power/notes/rrf_heater_models_prusa_mk3s_duet3.csv)",
    ),
    "bed_tau_s": (
        350.0,
        650.0,
        "R*C at 60 C: RRF M303 on a MK3S bed, 497.5 s (same file); Klipper logs 23->60 C in 131 s",
    ),
    "bed_rad_share": (
        0.20,
        0.40,
        "assumption: a 235x235 mm top at emissivity 0.9 radiates about 13 W at 60 C of the "
        "~50 W a bed of gain 155 K at 200 W loses",
    ),
    "bed_sensor_lag_s": (
        4.6,
        13.8,
        "assumption: RRF M303 dead time of a MK3S bed, 9.2 s (same csv), +-50 %",
    ),
    "p_electronics_w": (
        4.0,
        11.0,
        "corpus power/notes/neptune4pro_power_usage_PeterVRC.md (idle 11 W at the wall)",
    ),
    "p_steppers_enabled_w": (
        6.0,
        12.0,
        "same notes: steppers held 22.5 W vs idle 11 W",
    ),
    "p_steppers_moving_w": (
        2.0,
        9.0,
        "same notes: homing 31 W vs held 22.5 W",
    ),
    "p_fans_w": (1.0, 4.0, "assumption: 40-50 mm 24 V blower, 0.05-0.15 A"),
    "fan_exponent": (
        1.5,
        3.0,
        "assumption: fan affinity law (shaft power ~ speed^3, speed ~ PWM), down to 1.5 for "
        "motor and driver losses",
    ),
    "psu_efficiency_half_load": (
        0.80,
        0.90,
        "assumption: 80 PLUS-class open-frame 24 V supplies (Bronze: 85 % at 50 % load)",
    ),
    "psu_rated_over_peak": (
        1.1,
        1.5,
        "assumption: supply rated 1.1-1.5x the printer's peak DC load",
    ),
    "psu_no_load_w": (0.5, 2.0, "assumption: open-frame supply idling, no output"),
}
PSU_EFFICIENCY_DROP_FULL_LOAD = 0.03  # 80 PLUS Bronze: 85 % at 50 %, 82 % at 100 % load
T_REF_HOTEND_C = 215.0  # where the hotend's R is stated (RRF M303 set point, same csv)
T_REF_BED_C = 60.0  # where the bed's gain and tau are stated (same csv)

T_AMB_C = 22.0  # assumption: room temperature of the simulated session
FILAMENT_DIAMETER_MM = 1.75
PLA_DENSITY_G_PER_MM3 = 1.24e-3  # NatureWorks 4043D TDS via machine-data.md C (1.24 g/cm3)
PLA_CP_J_PER_GK = 1.8  # assumption: not found in the stored sources (machine-data.md "Not found")
PWM_FULL_SCALE = (
    127  # Marlin 1.1.9 prints @:127 at full heat (corpus serial/guidugast_pronterface.log)
)


@dataclass(frozen=True)
class PrinterParams:
    """The virtual printer's hidden physical parameters."""

    hotend: Heater
    bed: Heater
    electrical: Electrical
    accel_mm_s2: float = 1000.0
    max_feed_mm_s: float = 200.0
    max_z_feed_mm_s: float = 12.0

    def to_dict(self) -> dict:
        el = self.electrical
        return {
            "hotend": vars(self.hotend).copy(),
            "bed": vars(self.bed).copy(),
            "electrical": {
                **{k: v for k, v in vars(el).items() if k != "psu"},
                **{f"psu_{k}": v for k, v in vars(el.psu).items()},
            },
            "kinematics": {
                "accel_mm_s2": self.accel_mm_s2,
                "max_feed_mm_s": self.max_feed_mm_s,
                "max_z_feed_mm_s": self.max_z_feed_mm_s,
            },
        }

    def effective(self, t_hotend_c: float = 210.0, t_bed_c: float = 60.0) -> dict:
        """First-order equivalents (the parameters of :mod:`slicer_energy.thermal`'s model)
        at the print phase's operating point: heaters holding ``t_hotend_c``/``t_bed_c``
        (:meth:`.truth.Heater.effective`), steppers moving, part fan full; the supply's
        efficiency is its efficiency at that DC load."""
        el = self.electrical
        dc = el.dc_w(self.hotend.loss_w(t_hotend_c) + self.bed.loss_w(t_bed_c), True, True, 1.0)
        return {
            "hotend": self.hotend.effective(t_hotend_c),
            "bed": self.bed.effective(t_bed_c),
            "electrical": {
                "p_electronics_w": el.p_electronics_w,
                "p_steppers_enabled_w": el.p_steppers_enabled_w,
                "p_steppers_moving_w": el.p_steppers_moving_w,
                "p_fans_w": el.p_fans_w,
                "psu_efficiency": el.effective_efficiency(dc),
            },
        }


def draw_printer(seed: int) -> PrinterParams:
    """One virtual printer: every parameter uniform in its sourced range (see PARAM_RANGES)."""
    rng = random.Random(f"printer-{seed}")
    d = {k: rng.uniform(lo, hi) for k, (lo, hi, _src) in PARAM_RANGES.items()}

    def heater(h: str, r: float, c: float, t_ref: float) -> Heater:
        return Heater(
            d[f"{h}_p_max_w"], d[f"{h}_p_temp_coeff_per_k"], r, d[f"{h}_rad_share"], c,
            d[f"{h}_sensor_lag_s"], t_ref, T_AMB_C,
        )  # fmt: skip

    hotend = heater("hotend", d["hotend_r_k_per_w"], d["hotend_c_j_per_k"], T_REF_HOTEND_C)
    bed_r = d["bed_gain_k"] / d["bed_p_max_w"]
    bed = heater("bed", bed_r, d["bed_tau_s"] / bed_r, T_REF_BED_C)
    loads = {k: d[k] for k in ("p_electronics_w", "p_steppers_enabled_w", "p_steppers_moving_w")}
    peak_dc_w = sum(loads.values()) + d["p_fans_w"] + d["hotend_p_max_w"] + d["bed_p_max_w"]
    psu = Psu(
        d["psu_efficiency_half_load"],
        PSU_EFFICIENCY_DROP_FULL_LOAD,
        d["psu_rated_over_peak"] * peak_dc_w,
        d["psu_no_load_w"],
    )
    return PrinterParams(
        hotend=hotend,
        bed=bed,
        electrical=Electrical(
            **loads, p_fans_w=d["p_fans_w"], fan_exponent=d["fan_exponent"], psu=psu
        ),  # fmt: skip
        # machine-data.md A1/A3: accel 500 (Ender-3 V2) .. 1250 (MK3S), feed 200 mm/s
        accel_mm_s2=rng.uniform(500.0, 1250.0),
        max_feed_mm_s=200.0,
    )


Predicate = Callable[[], bool]  # what a clock's waiter waits for


class _Clock:
    """What both clocks share: a time scale, the condition their waiters sleep on, and
    :meth:`sleep_until`/:meth:`wake` on top of each one's :meth:`wait`."""

    def __init__(self, scale: float) -> None:
        if not scale > 0:
            raise ValueError(f"time scale must be > 0, got {scale}")
        self.scale = scale
        self._cond = threading.Condition()

    def wait(
        self, predicate: Predicate | None = None, until: float = math.inf, stop: Event | None = None
    ) -> None:
        """Block until ``predicate()`` holds or simulated time reaches ``until`` (or ``stop``);
        callers that change what a predicate reads call :meth:`wake`."""
        raise NotImplementedError

    def sleep_until(self, t_sim: float, stop: threading.Event | None = None) -> None:
        self.wait(None, t_sim, stop)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


class SimClock(_Clock):
    """Simulated seconds = real seconds × ``scale`` (continuous, so idle time counts too).

    The clock a virtual printer serves an outside host with (``rig simulate``): host latency
    is simulated time too. :class:`VirtualClock` is the one that does not depend on the host.
    """

    def __init__(self, scale: float = 1.0, start_s: float = 0.0) -> None:
        super().__init__(scale)
        self._t0_real = time.monotonic()
        self._t0_sim = start_s

    def now(self) -> float:
        return self._t0_sim + (time.monotonic() - self._t0_real) * self.scale

    def wait(
        self, predicate: Predicate | None = None, until: float = math.inf, stop: Event | None = None
    ) -> None:
        with self._cond:
            while not (stop is not None and stop.is_set()):
                if predicate is not None and predicate():
                    return
                left = (until - self.now()) / self.scale
                if left <= 0:
                    return
                self._cond.wait(min(left, 0.02))

    def actor(self) -> contextlib.AbstractContextManager:
        """Wraps a simulating thread's body (see :class:`VirtualClock`); nothing to do here."""
        return contextlib.nullcontext()

    def outside(self, since_real_s: float) -> contextlib.AbstractContextManager:
        """Wraps a wait for a party outside the simulation (see :class:`VirtualClock`)."""
        return contextlib.nullcontext()

    def hold_while(self, predicate: Callable[[], bool]) -> None:
        """Time runs with the wall clock here; nothing can hold it."""


@dataclass
class _Wait:
    predicate: Callable[[], bool] | None
    until: float
    since_real_s: float | None = None  # waiting for an outside party since (time.monotonic)

    def ready(self, t: float) -> bool:
        return t >= self.until or (self.predicate is not None and self.predicate())


class VirtualClock(_Clock):
    """Simulated time that advances with the simulated work, not with the wall clock, so the
    same seeds give the same session on an idle or a loaded machine.

    A discrete-event clock: the threads that simulate (the printer's command, motion and
    report loops, the meter) run inside :meth:`actor` and block only through :meth:`wait`.
    Time stands still while any actor runs or may run (its predicate holds or its deadline
    has come), while an actor waits for a party outside the simulation (:meth:`outside`: the
    host's next line, the poller's next request) for up to ``grace_s`` real seconds, and while
    a :meth:`hold_while` predicate holds (same grace). Otherwise it jumps to the earliest
    deadline, after (jump)/``scale`` real seconds when ``scale`` is finite, so a live view
    still moves at about ``scale`` × real time. So a host answers in zero simulated time, as a real
    host at 1× all but always does; only a host silent for ``grace_s`` lets time run on.
    """

    def __init__(self, scale: float = math.inf, start_s: float = 0.0, grace_s: float = 2.0):
        super().__init__(scale)
        self.grace_s = grace_s
        self._t = start_s
        self._actors: dict[int, _Wait | None] = {}  # thread id -> its wait (None: running)
        self._holds: list[list] = []  # [predicate, real time it became true or None]
        self._stopped = False
        self._driver: threading.Thread | None = None

    def now(self) -> float:
        return self._t

    def start(self) -> VirtualClock:
        self._driver = threading.Thread(target=self._drive, name="virtual-clock", daemon=True)
        self._driver.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._driver is not None:
            self._driver.join(timeout=2.0)

    @contextlib.contextmanager
    def actor(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            self._actors[me] = None
        try:
            yield
        finally:
            with self._cond:
                self._actors.pop(me, None)
                self._cond.notify_all()

    @contextlib.contextmanager
    def outside(self, since_real_s: float) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if me in self._actors:
                self._actors[me] = _Wait(None, math.inf, since_real_s)
                self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                if me in self._actors:
                    self._actors[me] = None

    def hold_while(self, predicate: Callable[[], bool]) -> None:
        with self._cond:
            self._holds.append([predicate, None])
            self._cond.notify_all()

    def wait(
        self, predicate: Predicate | None = None, until: float = math.inf, stop: Event | None = None
    ) -> None:
        me = threading.get_ident()
        w = _Wait(predicate, until)
        with self._cond:
            if me in self._actors:
                self._actors[me] = w
            self._cond.notify_all()
            while not w.ready(self._t) and not self._stopped:
                if stop is not None and stop.is_set():
                    break
                self._cond.wait(0.05)
            if me in self._actors:
                self._actors[me] = None

    def _held_for_s(self, real: float) -> float | None:
        """Real seconds to wait before time may advance, or None if it may advance now."""
        for w in self._actors.values():
            if w is None or w.ready(self._t):
                return 0.002
            if w.since_real_s is not None and real - w.since_real_s < self.grace_s:
                return min(0.01, self.grace_s - (real - w.since_real_s))
        for h in self._holds:
            if not h[0]():
                h[1] = None
                continue
            h[1] = real if h[1] is None else h[1]
            if real - h[1] < self.grace_s:
                return 0.002
        return None

    def _drive(self) -> None:
        with self._cond:
            while not self._stopped:
                t_real = time.monotonic()
                held = self._held_for_s(t_real)
                target = min((w.until for w in self._actors.values() if w), default=math.inf)
                if held is not None or target == math.inf:
                    self._cond.wait(0.01 if held is None else held)
                    continue
                if math.isfinite(self.scale):
                    # pace a live view; an outside party acting meanwhile is served first
                    self._cond.wait((target - self._t) / self.scale)
                    if self._stopped or self._held_for_s(time.monotonic()) is not None:
                        continue
                self._t = target
                self._cond.notify_all()


# Proportional gains of real firmware, converted from Marlin's 0..255 PID output to duty per K:
# hotend Kp 16.13 (MK3S) .. 28.72 (Ender-3 V2), bed Kp 126.13 (MK3S); machine-data.md A1, A3.
KP_HOTEND_PER_K = 22.0 / 255.0
KP_BED_PER_K = 126.13 / 255.0


class _PI:
    """Firmware-style heater control: full power or off outside ±``band_c`` of the target
    (Marlin's PID_FUNCTIONAL_RANGE, default 10 K), PI with anti-windup inside. The gain is a
    real firmware's Kp; the integral time follows the SIMC rule (Skogestad 2003, J. Process
    Control 13:291): with closed-loop time λ = τ/(K·kp), Ti = min(τ, 4λ), K = P·R, from the
    heater's first-order equivalent at its reference temperature."""

    band_c = 10.0

    def __init__(self, heater: Heater, kp_per_k: float) -> None:
        eff = heater.effective(heater.t_ref_c)  # tuned at the reference point, as M303 is
        k = eff["p_max_w"] * eff["r_k_per_w"]
        tau_s = eff["r_k_per_w"] * eff["c_j_per_k"]
        self.kp = kp_per_k
        lam_s = tau_s / (k * kp_per_k)
        self.ki = self.kp / min(tau_s, 4.0 * lam_s)
        self.integral = 0.0

    def duty(self, t_c: float, target_c: float, dt_s: float) -> float:
        if target_c <= 0:
            self.integral = 0.0
            return 0.0
        e = target_c - t_c
        if abs(e) > self.band_c:
            self.integral = 0.0
            return 1.0 if e > 0 else 0.0
        u = self.kp * e + self.ki * self.integral
        if 0.0 < u < 1.0 or (u >= 1.0 and e < 0) or (u <= 0.0 and e > 0):
            self.integral += e * dt_s
        return min(1.0, max(0.0, u))


class Physics:
    """State of the virtual printer integrated lazily up to any simulated time.

    Inputs (targets, motion, flow, fan) are piecewise constant: callers set them after
    :meth:`advance_to` the time of the change. ``t_hotend_c``/``t_bed_c`` are the sensors (what
    the firmware controls and reports), ``t_*_block_c`` the heater blocks. True wall and DC
    energy are accumulated per sub-step, and a short history serves the virtual meter's
    1-second average.
    """

    DT_S = 0.1

    def __init__(self, params: PrinterParams, t0_s: float = 0.0) -> None:
        self.p = params
        self.lock = threading.RLock()
        self.t_s = t0_s
        self.t_hotend_c = self.t_hotend_block_c = params.hotend.t_amb_c
        self.t_bed_c = self.t_bed_block_c = params.bed.t_amb_c
        self.target_hotend_c = 0.0
        self.target_bed_c = 0.0
        self.max_target_c = {"hotend": 0.0, "bed": 0.0}  # highest set point so far
        self.duty_hotend = 0.0
        self.duty_bed = 0.0
        self.moving = False
        self.steppers_on = False
        self.fan = 0.0
        self.flow_g_per_k = 0.0
        self.energy_j = 0.0
        self.energy_dc_j = 0.0
        self.power_w = self._power_w()[0]
        self._p_before_w = self.power_w  # the idle printer before the simulation started
        self._pi_h = _PI(params.hotend, KP_HOTEND_PER_K)
        self._pi_b = _PI(params.bed, KP_BED_PER_K)
        self.history: collections.deque[tuple[float, float]] = collections.deque(maxlen=600)
        self.history.append((self.t_s, 0.0))

    def _power_w(self) -> tuple[float, float, float, float]:
        """``(wall, DC, hotend, bed)`` power now, in W."""
        p_h = self.p.hotend.power_w(self.t_hotend_block_c, self.duty_hotend)
        p_b = self.p.bed.power_w(self.t_bed_block_c, self.duty_bed)
        dc = self.p.electrical.dc_w(p_h + p_b, self.steppers_on, self.moving, self.fan)
        return self.p.electrical.psu.wall_w(dc), dc, p_h, p_b

    def advance_to(self, t_s: float) -> None:
        with self.lock:
            self.max_target_c["hotend"] = max(self.max_target_c["hotend"], self.target_hotend_c)
            self.max_target_c["bed"] = max(self.max_target_c["bed"], self.target_bed_c)
            while self.t_s < t_s - 1e-9:
                dt = min(self.DT_S, t_s - self.t_s)
                self.duty_hotend = self._pi_h.duty(self.t_hotend_c, self.target_hotend_c, dt)
                self.duty_bed = self._pi_b.duty(self.t_bed_c, self.target_bed_c, dt)
                self.power_w, dc, p_h, p_b = self._power_w()
                self.energy_j += self.power_w * dt
                self.energy_dc_j += dc * dt
                self.t_hotend_block_c, self.t_hotend_c = self.p.hotend.step(
                    self.t_hotend_block_c, self.t_hotend_c, p_h, dt, self.flow_g_per_k
                )
                self.t_bed_block_c, self.t_bed_c = self.p.bed.step(
                    self.t_bed_block_c, self.t_bed_c, p_b, dt, 0.0
                )
                self.t_s += dt
                if self.t_s - self.history[-1][0] >= 0.2 - 1e-9:
                    self.history.append((self.t_s, self.energy_j))

    def mean_power_w(self, window_s: float = 1.0) -> float:
        """Average wall power over the last ``window_s`` (what a meter reports)."""
        with self.lock:
            t_now, e_now = self.t_s, self.energy_j
            for t, e in reversed(self.history):
                if t_now - t >= window_s - 1e-9:
                    return (e_now - e) / (t_now - t)
            t, e = self.history[0]
            return (e_now - e) / (t_now - t) if t_now > t else self.power_w

    def mean_power_between_w(self, t0_s: float, t1_s: float) -> float:
        """Average wall power over ``[t0_s, t1_s]`` (both at or before now), from the
        energy history interpolated linearly; before the history the printer stood idle."""
        with self.lock:
            pts = [*self.history, (self.t_s, self.energy_j)]
            t_first, e_first = pts[0]

            def energy_at(t: float) -> float:
                if t <= t_first:
                    return e_first - self._p_before_w * (t_first - t)
                for (ta, ea), (tb, eb) in zip(pts, pts[1:], strict=False):
                    if t <= tb:
                        return ea + (eb - ea) * (t - ta) / (tb - ta) if tb > ta else eb
                return self.energy_j

            return (energy_at(t1_s) - energy_at(t0_s)) / (t1_s - t0_s)

    def set_flow(self, e_mm_per_s: float) -> None:
        area = math.pi * (FILAMENT_DIAMETER_MM / 2) ** 2
        self.flow_g_per_k = max(0.0, e_mm_per_s) * area * PLA_DENSITY_G_PER_MM3 * PLA_CP_J_PER_GK


def move_time_s(dist_mm: float, feed_mm_s: float, accel_mm_s2: float) -> float:
    """The virtual printer's truth: every move from and to standstill (no junction speeds, so
    slower than the planners of ``gcode/``). Deliberately not ``motion.trapezoid_time``: the
    simulated printer must differ from the model that calibration fits to it."""
    if dist_mm <= 0 or feed_mm_s <= 0:
        return 0.0
    if dist_mm >= feed_mm_s**2 / accel_mm_s2:
        return dist_mm / feed_mm_s + feed_mm_s / accel_mm_s2
    return 2.0 * math.sqrt(dist_mm / accel_mm_s2)
