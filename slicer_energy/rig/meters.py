"""Power meter drivers: PZEM-004T v3 and Eastron SDM (Modbus RTU), Tasmota and Shelly (HTTP).

All drivers share one tiny interface, ``read() -> MeterSample``, and are picked by name from
:data:`METERS` (``open_meter("pzem:/dev/ttyUSB0")``). Frames are built and parsed by pure
functions (CRC16, register maps), tested byte for byte against published examples.

Register maps:

- PZEM-004T v3.0 (Peacefair datasheet/user manual, innovatorsguru.com/wp-content/uploads/2019/
  06/PZEM-004T-V3.0-Datasheet-User-Manual.pdf): 9600 8N1, function 0x04, input registers 0-9:
  voltage 0.1 V; current 0.001 A and power 0.1 W as 32 bits, low word first; energy 1 Wh (32
  bits, low word first); frequency 0.1 Hz; power factor 0.01; alarm. 0xF8 is the general
  address a single meter always answers. Function 0x42 resets the energy counter.
- Eastron SDM120/SDM230/SDM630 (Eastron "Modbus Protocol" documents): function 0x04, each value
  an IEEE-754 float32 in two registers, big-endian: 0x00 voltage, 0x06 current, 0x0C active
  power (phase 1; SDM630 total system power is 0x34), 0x46 frequency, 0x156 total kWh.
"""

from __future__ import annotations

import json
import math
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from ..errors import MeterError

try:  # a vanished tty makes pyserial raise termios.error, which is not an OSError
    import termios

    _PORT_ERRORS: tuple[type[BaseException], ...] = (OSError, termios.error)
except ImportError:  # pragma: no cover - Windows
    _PORT_ERRORS = (OSError,)


@dataclass
class MeterSample:
    """One reading. ``t_s`` is on the caller's clock; missing quantities are None."""

    t_s: float
    power_w: float
    voltage_v: float | None = None
    current_a: float | None = None
    energy_wh: float | None = None  # the meter's own counter
    frequency_hz: float | None = None
    power_factor: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------ Modbus RTU, pure

PZEM_GENERAL_ADDRESS = 0xF8


def crc16(data: bytes) -> int:
    """Modbus CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(frame: bytes) -> bytes:
    return frame + crc16(frame).to_bytes(2, "little")


def read_request(address: int, start: int, count: int, function: int = 0x04) -> bytes:
    """Read input (0x04) or holding (0x03) registers request, CRC included."""
    if not 0 <= address <= 0xF8:
        raise ValueError(f"Modbus address must be 0..248, got {address}")
    return with_crc(struct.pack(">BBHH", address, function, start, count))


def parse_read_response(frame: bytes, address: int, count: int, function: int = 0x04) -> list[int]:
    """Registers from a read reply; raises MeterError naming what is wrong."""
    if len(frame) >= 5 and frame[1] == (function | 0x80):
        raise MeterError(f"meter exception code {frame[2]} for function {function:#04x}")
    need = 5 + 2 * count
    if len(frame) < need:
        raise MeterError(
            f"short Modbus reply: {len(frame)} bytes, expected {need}: {frame.hex(' ')}"
        )
    frame = frame[:need]
    if crc16(frame[:-2]) != int.from_bytes(frame[-2:], "little"):
        raise MeterError(f"bad CRC in Modbus reply {frame.hex(' ')}")
    if frame[0] != address and address != PZEM_GENERAL_ADDRESS:
        raise MeterError(f"reply from address {frame[0]}, expected {address}")
    if frame[1] != function or frame[2] != 2 * count:
        raise MeterError(f"unexpected Modbus reply header {frame[:3].hex(' ')}")
    return [int.from_bytes(frame[3 + 2 * i : 5 + 2 * i], "big") for i in range(count)]


def pzem_decode(regs: Sequence[int], t_s: float = 0.0) -> MeterSample:
    """PZEM-004T v3 input registers 0..9 -> sample (32-bit values are low word first)."""
    if len(regs) < 9:
        raise MeterError(f"PZEM reply has {len(regs)} registers, expected 10")
    return MeterSample(
        t_s=t_s,
        voltage_v=regs[0] / 10.0,
        current_a=(regs[1] | regs[2] << 16) / 1000.0,
        power_w=(regs[3] | regs[4] << 16) / 10.0,
        energy_wh=float(regs[5] | regs[6] << 16),
        frequency_hz=regs[7] / 10.0,
        power_factor=regs[8] / 100.0,
    )


def pzem_registers(s: MeterSample) -> list[int]:
    """Inverse of :func:`pzem_decode` with the meter's resolution (used by the virtual meter)."""

    def u32(x: float) -> tuple[int, int]:
        v = max(0, min(0xFFFFFFFF, int(round(x))))
        return v & 0xFFFF, v >> 16

    cur = u32((s.current_a or 0.0) * 1000)
    pw = u32(s.power_w * 10)
    en = u32(math.floor(s.energy_wh or 0.0))
    return [
        int(round((s.voltage_v or 0.0) * 10)),
        *cur,
        *pw,
        *en,
        int(round((s.frequency_hz or 0.0) * 10)),
        int(round((s.power_factor or 0.0) * 100)),
        0,
    ]


SDM_REGISTERS = {  # name -> input register of the float32 pair
    "voltage_v": 0x00,
    "current_a": 0x06,
    "power_w": 0x0C,
    "power_factor": 0x1E,
    "frequency_hz": 0x46,
    "energy_kwh": 0x156,
}
SDM630_TOTAL_POWER = 0x34


def float_regs(x: float) -> tuple[int, int]:
    hi, lo = struct.unpack(">HH", struct.pack(">f", x))
    return hi, lo


def regs_float(hi: int, lo: int) -> float:
    return struct.unpack(">f", struct.pack(">HH", hi, lo))[0]


def sdm_registers(s: MeterSample, kind: str = "sdm120") -> list[int]:
    """Input register image up to 0x157 for the virtual SDM meter."""
    regs = [0] * 0x158
    vals = {
        "voltage_v": s.voltage_v or 0.0,
        "current_a": s.current_a or 0.0,
        "power_w": s.power_w,
        "power_factor": s.power_factor or 0.0,
        "frequency_hz": s.frequency_hz or 0.0,
        "energy_kwh": (s.energy_wh or 0.0) / 1000.0,
    }
    for name, reg in SDM_REGISTERS.items():
        regs[reg], regs[reg + 1] = float_regs(vals[name])
    if kind == "sdm630":
        regs[SDM630_TOTAL_POWER], regs[SDM630_TOTAL_POWER + 1] = float_regs(s.power_w)
    return regs


# ------------------------------------------------------------------ serial drivers


class _ModbusSerial:
    def __init__(self, port: str, address: int, baud: int = 9600, timeout_s: float = 0.5) -> None:
        import serial

        self.address = address
        self.port = port
        try:
            self.ser = serial.Serial(
                port, baud, bytesize=8, parity="N", stopbits=1, timeout=timeout_s
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise MeterError(f"cannot open meter port {port}: {exc}") from exc

    def read_registers(self, start: int, count: int, retries: int = 2) -> list[int]:
        req = read_request(self.address, start, count)
        need = 5 + 2 * count
        last: Exception | None = None
        for _ in range(retries + 1):
            try:
                self.ser.reset_input_buffer()
                self.ser.write(req)
                data = b""
                deadline = time.monotonic() + (self.ser.timeout or 0.5)
                while len(data) < need and time.monotonic() < deadline:
                    chunk = self.ser.read(need - len(data))
                    if chunk:
                        data += chunk
                        if len(data) >= 5 and data[1] & 0x80:
                            break
                return parse_read_response(data, self.address, count)
            except MeterError as exc:
                last = exc
            except _PORT_ERRORS as exc:  # includes SerialException
                raise MeterError(f"meter port {self.port} failed: {exc}") from exc
        raise MeterError(f"no valid answer from meter on {self.port}: {last}")

    def close(self) -> None:
        try:
            self.ser.close()
        except _PORT_ERRORS:
            pass


class PzemMeter(_ModbusSerial):
    """PZEM-004T v3.0 over its TTL UART (9600 8N1); address 0xF8 reaches a single meter."""

    kind = "pzem"

    def __init__(self, port: str, address: int = PZEM_GENERAL_ADDRESS, **kw) -> None:
        super().__init__(port, address, **kw)

    def read(self, t_s: float = 0.0) -> MeterSample:
        return pzem_decode(self.read_registers(0, 10), t_s)


class SdmMeter(_ModbusSerial):
    """Eastron SDM120 / SDM230 / SDM630 over RS-485 (default address 1, 9600 baud)."""

    def __init__(self, port: str, address: int = 1, kind: str = "sdm120", **kw) -> None:
        super().__init__(port, address, **kw)
        self.kind = kind

    def read(self, t_s: float = 0.0) -> MeterSample:
        def f(reg: int) -> float:
            hi, lo = self.read_registers(reg, 2)
            return regs_float(hi, lo)

        # One request per value: single-phase SDMs do not define every register in between.
        power_reg = SDM630_TOTAL_POWER if self.kind == "sdm630" else SDM_REGISTERS["power_w"]
        return MeterSample(
            t_s=t_s,
            power_w=f(power_reg),
            voltage_v=f(SDM_REGISTERS["voltage_v"]),
            current_a=f(SDM_REGISTERS["current_a"]),
            frequency_hz=f(SDM_REGISTERS["frequency_hz"]),
            energy_wh=f(SDM_REGISTERS["energy_kwh"]) * 1000.0,
        )


# ------------------------------------------------------------------ HTTP drivers


def _get_json(url: str, timeout_s: float) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:  # noqa: S310 - user's own device
            return json.loads(r.read().decode("utf-8"))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise MeterError(f"smart plug at {url} did not answer with JSON: {exc}") from exc


def _base(host: str) -> str:
    return host if host.startswith(("http://", "https://")) else f"http://{host}"


def parse_tasmota(doc: dict, t_s: float = 0.0) -> MeterSample:
    """Tasmota ``Status 10``: ``{"StatusSNS": {"ENERGY": {"Power": W, "Total": kWh, ...}}}``."""
    try:
        e = doc["StatusSNS"]["ENERGY"]
        p = e["Power"]
    except (KeyError, TypeError) as exc:
        raise MeterError(f"Tasmota reply has no StatusSNS.ENERGY.Power: {doc}") from exc
    if isinstance(p, list):  # multi-channel plugs report a list
        p = sum(p)
    return MeterSample(
        t_s=t_s,
        power_w=float(p),
        voltage_v=_f(e.get("Voltage")),
        current_a=_f(e.get("Current")),
        energy_wh=None if e.get("Total") is None else float(e["Total"]) * 1000.0,
        frequency_hz=_f(e.get("Frequency")),
        power_factor=_f(e.get("Factor")),
    )


def parse_shelly(doc: dict, t_s: float = 0.0) -> MeterSample:
    """Shelly Gen1 ``/meter/0`` (``power`` W, ``total`` watt-minutes) or Gen2
    ``Switch.GetStatus`` (``apower`` W, ``aenergy.total`` Wh, ``voltage``, ``current``)."""
    if "apower" in doc:
        return MeterSample(
            t_s=t_s,
            power_w=float(doc["apower"]),
            voltage_v=_f(doc.get("voltage")),
            current_a=_f(doc.get("current")),
            energy_wh=_f((doc.get("aenergy") or {}).get("total")),
            frequency_hz=_f(doc.get("freq")),
            power_factor=_f(doc.get("pf")),
        )
    if "power" in doc:
        total = doc.get("total")
        return MeterSample(
            t_s=t_s,
            power_w=float(doc["power"]),
            voltage_v=_f(doc.get("voltage")),
            energy_wh=None if total is None else float(total) / 60.0,
        )
    raise MeterError(f"Shelly reply has neither 'apower' (Gen2) nor 'power' (Gen1): {doc}")


def _f(x) -> float | None:
    return None if x is None else float(x)


class TasmotaMeter:
    kind = "tasmota"

    def __init__(self, host: str, timeout_s: float = 2.0) -> None:
        self.url = _base(host) + "/cm?cmnd=Status%2010"
        self.timeout_s = timeout_s

    def read(self, t_s: float = 0.0) -> MeterSample:
        return parse_tasmota(_get_json(self.url, self.timeout_s), t_s)

    def close(self) -> None:
        pass


class ShellyMeter:
    """Tries Gen2 RPC first, falls back to the Gen1 ``/meter/0`` endpoint (remembered)."""

    kind = "shelly"

    def __init__(self, host: str, timeout_s: float = 2.0) -> None:
        self.base = _base(host)
        self.timeout_s = timeout_s
        self.url: str | None = None

    def read(self, t_s: float = 0.0) -> MeterSample:
        if self.url is None:
            for path in ("/rpc/Switch.GetStatus?id=0", "/meter/0"):
                try:
                    s = parse_shelly(_get_json(self.base + path, self.timeout_s), t_s)
                except MeterError:
                    continue
                self.url = self.base + path
                return s
            raise MeterError(f"no Shelly Gen1 or Gen2 power endpoint at {self.base}")
        return parse_shelly(_get_json(self.url, self.timeout_s), t_s)

    def close(self) -> None:
        pass


METERS: dict[str, Callable[[str], object]] = {
    "pzem": lambda where: PzemMeter(where),
    "sdm120": lambda where: SdmMeter(where, kind="sdm120"),
    "sdm230": lambda where: SdmMeter(where, kind="sdm230"),
    "sdm630": lambda where: SdmMeter(where, kind="sdm630"),
    "tasmota": lambda where: TasmotaMeter(where),
    "shelly": lambda where: ShellyMeter(where),
}


def open_meter(spec: str):
    """``KIND:WHERE`` -> driver: ``pzem:/dev/ttyUSB1``, ``sdm120:COM4``, ``shelly:10.0.0.7``."""
    kind, sep, where = spec.partition(":")
    if not sep or not where or kind.lower() not in METERS:
        raise MeterError(
            f"meter {spec!r}: expected KIND:PORT_OR_HOST with KIND one of {', '.join(METERS)}"
        )
    return METERS[kind.lower()](where)


# ------------------------------------------------------------------ energy


def integrate_energy_j(t_s: Sequence[float], power_w: Sequence[float]) -> float:
    """Trapezoidal integral of power samples: the print's energy. The meter's own 1 Wh counter
    is a cross-check only; it is too coarse for a short print (a 20 min print at 60 W is 20 Wh,
    so one count is 5 %)."""
    if len(t_s) != len(power_w):
        raise ValueError(f"{len(t_s)} times but {len(power_w)} power values")
    e = 0.0
    for i in range(1, len(t_s)):
        dt = t_s[i] - t_s[i - 1]
        if dt < 0:
            raise ValueError(f"time goes backwards at sample {i}: {t_s[i - 1]} -> {t_s[i]}")
        e += 0.5 * (power_w[i] + power_w[i - 1]) * dt
    return e
