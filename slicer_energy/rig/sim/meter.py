"""A virtual power meter (PZEM-004T v3 or Eastron SDM, Modbus RTU slave) on a pty that
measures the virtual printer's wall power."""

from __future__ import annotations

import math
import random
import threading
import time

from .. import meters as M
from .physics import Physics, SimClock, VirtualClock
from .pty import PtyPort


class VirtualMeter:
    """A PZEM-004T v3 (``kind="pzem"``) or Eastron SDM120/230/630 on a pty (Modbus RTU slave),
    measuring the virtual printer's wall power (1 s average) with seeded noise.

    With ``interval_s`` the meter measures every ``interval_s`` of simulated time, as a PZEM
    updates its registers about once a second: a request for power answers with the next
    measurement (waiting for it), the other registers with the same one. Under a
    :class:`VirtualClock` the readings are then the same whenever the poller asks; with
    ``interval_s=None`` every request measures at once."""

    def __init__(
        self,
        physics: Physics,
        clock: SimClock | VirtualClock,
        kind: str = "pzem",
        *,
        address: int | None = None,
        seed: int = 0,
        noise_frac: float = 0.005,
        voltage_v: float = 230.0,
        power_factor: float = 0.9,  # assumption: switch-mode PSU without PFC under load
        interval_s: float | None = None,
    ) -> None:
        if kind not in ("pzem", "sdm120", "sdm230", "sdm630"):
            raise ValueError(f"unknown meter kind {kind!r}")
        self.kind = kind
        self.address = 1 if address is None else address
        self.physics = physics
        self.clock = clock
        self.rng = random.Random(f"meter-{seed}")
        self.noise_frac = noise_frac
        self.voltage_v = voltage_v
        self.power_factor = power_factor
        self.energy_offset_wh = 0.0
        self.interval_s = interval_s
        self._next_tick = -math.inf  # simulated time of the next measurement
        self._untimed = threading.Event()  # set: every request measures at once
        self._latched: M.MeterSample | None = None
        self.pty = PtyPort()
        self.path = self.pty.path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="vmeter", daemon=True)
        self.requests = 0
        # (t_s, true wall energy J) at every reading: the truth a calibration is checked against
        self.true_log: list[tuple[float, float]] = []

    def start(self) -> VirtualMeter:
        self._thread.start()
        return self

    def stop_ticking(self) -> None:
        """The session's time has stopped, so the next tick would never come: from now on
        the meter repeats its last measurement, answering every 0.1 s of real time (so a
        poller that is being stopped logs at most a copy or two)."""
        self._untimed.set()

    def stop(self) -> None:
        self._untimed.set()
        self._stop.set()
        self.pty.close()
        self._thread.join(timeout=2.0)

    def reading(self, window_end_s: float | None = None) -> M.MeterSample:
        """A reading now; its 1 s average ends at ``window_end_s`` (default: now)."""
        t = self.clock.now()
        self.physics.advance_to(t)
        if window_end_s is None or window_end_s >= t:
            p_mean = self.physics.mean_power_w(1.0)
        else:
            p_mean = self.physics.mean_power_between_w(window_end_s - 1.0, window_end_s)
        p = p_mean * (1.0 + self.rng.gauss(0.0, self.noise_frac))
        v = self.voltage_v * (1.0 + self.rng.gauss(0.0, 0.002))
        e_wh = self.physics.energy_j / 3600.0 - self.energy_offset_wh
        self.true_log.append((t, self.physics.energy_j))
        return M.MeterSample(
            t_s=t,
            power_w=max(0.0, p),
            voltage_v=v,
            current_a=max(0.0, p) / (v * self.power_factor),
            energy_wh=e_wh,
            frequency_hz=50.0,
            power_factor=self.power_factor,
        )

    def _measure(self, start_register: int) -> M.MeterSample:
        """A new reading per request, or per ``interval_s`` tick (see the class docstring):
        a request that starts at the power register (PZEM: all registers from 0) takes the
        next tick's measurement."""
        if self.interval_s is None:
            return self.reading()
        if self._untimed.is_set() and self._latched is not None:
            self._stop.wait(0.1)
            return self._latched
        power_reg = (
            0
            if self.kind == "pzem"
            else M.SDM630_TOTAL_POWER
            if self.kind == "sdm630"
            else M.SDM_REGISTERS["power_w"]
        )
        if self._latched is None or start_register == power_reg:
            t_request = self.clock.now()
            self.clock.wait(until=self._next_tick, stop=self._untimed)
            # The host stamps a reading at the middle of its request/answer exchange (rig
            # session's poller); this meter answers at its tick, so its average ends there.
            self._latched = self.reading(0.5 * (t_request + self.clock.now()))
            self._next_tick = self._latched.t_s + self.interval_s
        return self._latched

    def _serve(self) -> None:
        with self.clock.actor():
            self._serve_frames()

    def _serve_frames(self) -> None:
        buf = b""
        answered = time.monotonic()  # the poller's next request is due from then on
        while not self._stop.is_set():
            data = self.pty.read_from_peer(self.clock, answered)
            if data is None:
                return
            if not data:
                buf = b""  # inter-frame silence ends any partial frame
                continue
            buf += data
            while len(buf) >= 4:
                frame_len = 8 if buf[1] in (0x03, 0x04) else 4 if buf[1] == 0x42 else 0
                if frame_len == 0 or (buf[0] not in (self.address, M.PZEM_GENERAL_ADDRESS)):
                    buf = buf[1:]
                    continue
                if len(buf) < frame_len:
                    break
                frame, buf = buf[:frame_len], buf[frame_len:]
                if M.crc16(frame[:-2]) != int.from_bytes(frame[-2:], "little"):
                    continue
                self.requests += 1
                reply = self._answer(frame)
                if reply:
                    self.pty.write(reply)
                answered = time.monotonic()

    def _answer(self, frame: bytes) -> bytes | None:
        addr, func = frame[0], frame[1]
        if func == 0x42 and self.kind == "pzem":
            s = self.reading()
            self.energy_offset_wh += s.energy_wh
            return M.with_crc(bytes([addr, 0x42]))
        if func not in (0x03, 0x04):
            return M.with_crc(bytes([addr, func | 0x80, 0x01]))
        start = int.from_bytes(frame[2:4], "big")
        count = int.from_bytes(frame[4:6], "big")
        s = self._measure(start)
        if self.kind == "pzem":
            regs = M.pzem_registers(s)
        else:
            regs = M.sdm_registers(s, self.kind)
        if start + count > len(regs) and self.kind == "pzem":
            return M.with_crc(bytes([addr, func | 0x80, 0x02]))
        words = [regs[i] if i < len(regs) else 0 for i in range(start, start + count)]
        payload = b"".join(w.to_bytes(2, "big") for w in words)
        return M.with_crc(bytes([addr, func, len(payload)]) + payload)
