"""Meter drivers: Modbus frames byte for byte against published examples, decoders against the
PZEM datasheet example, end-to-end reads over ptys (our virtual meter and pymodbus's serial
server), and the HTTP plugs against small servers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import select
import struct
import threading
import time
import tty
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from slicer_energy.errors import MeterError
from slicer_energy.rig import meters as M
from slicer_energy.rig.sim.physics import Physics, SimClock, draw_printer
from slicer_energy.rig.sim.printer import VirtualMeter

pytestmark = pytest.mark.timeout(60)


def hx(s: str) -> bytes:
    return bytes.fromhex(s)


# Published frames with their CRC (Modbus RTU, CRC low byte first).
PUBLISHED = [
    # Eastron/any slave 1, read input registers 0-1 (the SDM voltage float); also the request a
    # Korean battery-monitor README lists with reply "01 04 04 00 06 00 05 DB 86".
    ("01 04 00 00 00 02 71 CB", "read input regs 0..1, slave 1"),
    ("01 04 04 00 06 00 05 DB 86", "its reply, same README"),
    ("01 03 00 00 00 02 C4 0B", "read holding regs 0..1, same README"),
    ("01 03 04 00 06 00 05 DA 31", "its reply, same README"),
    # Seeed wiki, SenseCAP ONE compact weather sensor, "Modbus decoding" section:
    ("01 04 04 00 00 6E 8C D6 41", "SenseCAP reply 28300 (28.3 C)"),
    ("0A 04 00 00 00 06 71 73", "SenseCAP S500 read"),
    ("26 04 00 30 00 04 F7 11", "SenseCAP S900 PM read"),
    ("2B 04 00 40 00 02 77 D5", "SenseCAP S1000 CO2 read"),
]


@pytest.mark.parametrize("frame,what", PUBLISHED, ids=[w for _f, w in PUBLISHED])
def test_crc_matches_published_frames(frame, what):
    b = hx(frame)
    assert M.with_crc(b[:-2]) == b, what


def test_published_typo_is_detected():
    """The same Seeed page prints the S700 read as "14 04 00 00 00 20 F3 06"; both our CRC and
    pymodbus's give F3 17, so the page's last byte is a typo, and a meter would ignore that
    frame. We check that we agree with pymodbus rather than with the typo."""
    rtu = pytest.importorskip("pymodbus.framer.rtu")
    body = hx("14 04 00 00 00 20")
    ours = M.with_crc(body)[-2:]
    assert ours == rtu.FramerRTU.compute_CRC(body).to_bytes(2, "big") == hx("F3 17")
    assert ours != hx("F3 06")


def test_requests_byte_for_byte():
    assert M.read_request(1, 0x0000, 2) == hx("01 04 00 00 00 02 71 CB")
    assert M.read_request(1, 0x0000, 2, function=0x03) == hx("01 03 00 00 00 02 C4 0B")
    assert M.read_request(0x2B, 0x0040, 2) == hx("2B 04 00 40 00 02 77 D5")


def test_crc_agrees_with_pymodbus():
    rtu = pytest.importorskip("pymodbus.framer.rtu")
    for payload in (b"\x04\x00\x00\x00\x0a", b"\x04\x01\x56\x00\x02", b"\x42"):
        for addr in (1, 0xF8, 0x2B):
            ours = M.with_crc(bytes([addr]) + payload)
            frame = bytes([addr]) + payload
            theirs = frame + rtu.FramerRTU.compute_CRC(frame).to_bytes(2, "big")
            assert ours == theirs


def test_pzem_datasheet_example_decodes():
    """PZEM-004T V3.0 user manual example: 0x01 0x04 0x14, then registers for 220.0 V,
    1.000 A, 220.0 W, 0 Wh, 50.0 Hz, PF 1.00, alarm 0 (CRC shown as 0xHH 0xLL there)."""
    body = hx("01 04 14 08 98 03 E8 00 00 08 98 00 00 00 00 00 00 01 F4 00 64 00 00")
    regs = M.parse_read_response(M.with_crc(body), 1, 10)
    s = M.pzem_decode(regs)
    assert (s.voltage_v, s.current_a, s.power_w, s.energy_wh) == (220.0, 1.0, 220.0, 0.0)
    assert (s.frequency_hz, s.power_factor) == (50.0, 1.0)
    # and our encoder reproduces the datasheet's register image
    assert M.pzem_registers(s) == regs


def test_pzem_low_word_first_for_large_values():
    # 123456.7 W = 1234567 (0x0012D687): low word 0xD687 at register 3, high 0x0012 at 4
    s = M.MeterSample(0.0, power_w=123456.7, voltage_v=230.0, current_a=536.768, energy_wh=70000)
    regs = M.pzem_registers(s)
    assert regs[3:5] == [0xD687, 0x0012]
    assert regs[5:7] == [70000 & 0xFFFF, 70000 >> 16]
    assert M.pzem_decode(regs).power_w == pytest.approx(123456.7)


def test_pzem_general_address_request():
    req = M.read_request(M.PZEM_GENERAL_ADDRESS, 0, 10)
    assert req[:6] == hx("F8 04 00 00 00 0A")
    assert req == hx("F8 04 00 00 00 0A 64 64")


def test_bad_crc_and_exception_are_reported():
    good = M.with_crc(hx("01 04 04 00 06 00 05"))
    with pytest.raises(MeterError, match="CRC"):
        M.parse_read_response(good[:-1] + bytes([good[-1] ^ 1]), 1, 2)
    with pytest.raises(MeterError, match="exception code 2"):
        M.parse_read_response(M.with_crc(hx("01 84 02")), 1, 2)


def test_sdm_float_registers():
    # IEEE-754: 230.0 = 0x43660000
    assert M.float_regs(230.0) == (0x4366, 0x0000)
    assert M.regs_float(0x4366, 0x0000) == 230.0


# ------------------------------------------------------------------ end to end over ptys


def _physics_at(power_w_target: float | None = None):
    ph = Physics(draw_printer(3), 0.0)
    ph.target_bed_c = 60.0
    return ph


@pytest.mark.parametrize("kind", ["pzem", "sdm120", "sdm630"])
def test_meter_end_to_end_over_pty_against_virtual_meter(kind):
    clock = SimClock(50.0)
    ph = _physics_at()
    vm = VirtualMeter(ph, clock, kind, seed=1, noise_frac=0.0).start()
    meter = None
    try:
        meter = M.PzemMeter(vm.path) if kind == "pzem" else M.SdmMeter(vm.path, kind=kind)
        samples = [meter.read(clock.now()) for _ in range(5)]
        ph.advance_to(clock.now())
        # bed heating at full power: the supply's input for P_bed plus electronics, within
        # meter resolution
        p = ph.p
        dc_w = p.bed.power_w(ph.t_bed_block_c, 1.0) + p.electrical.p_electronics_w
        expected = p.electrical.psu.wall_w(dc_w)
        assert samples[-1].power_w == pytest.approx(expected, rel=0.01)
        assert samples[-1].voltage_v == pytest.approx(230.0, rel=0.02)
        assert vm.requests >= 5
    finally:
        if meter is not None:
            meter.close()
        vm.stop()


class _NullModem:
    """Two ptys joined back to back (like socat): a server opens ``a``, a client ``b``."""

    def __init__(self):
        self.fds = []
        self.paths = []
        for _ in range(2):
            m, s = os.openpty()
            tty.setraw(m)
            tty.setraw(s)
            self.fds.append((m, s))
            self.paths.append(os.ttyname(s))
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    @property
    def a(self):
        return self.paths[0]

    @property
    def b(self):
        return self.paths[1]

    def _run(self):
        ma, mb = self.fds[0][0], self.fds[1][0]
        while not self._stop.is_set():
            r, _, _ = select.select([ma, mb], [], [], 0.05)
            for fd in r:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                os.write(mb if fd == ma else ma, data)

    def close(self):
        self._stop.set()
        self._t.join(2)
        for m, s in self.fds:
            os.close(m)
            os.close(s)


def test_pzem_read_against_pymodbus_serial_server():
    """pymodbus's own Modbus RTU server holds the PZEM datasheet register image at address 1;
    our driver reads it over a pty pair and decodes the datasheet values."""
    server_mod = pytest.importorskip("pymodbus.server")
    ds = pytest.importorskip("pymodbus.datastore")
    from pymodbus import FramerType

    regs = [0x0898, 0x03E8, 0, 0x0898, 0, 0, 0, 0x01F4, 0x0064, 0]
    block = ds.ModbusSequentialDataBlock(1, regs)  # pymodbus maps protocol address 0 to 1
    ctx = ds.ModbusServerContext(devices={1: ds.ModbusDeviceContext(ir=block)}, single=False)
    modem = _NullModem()
    th = threading.Thread(
        target=server_mod.StartSerialServer,
        kwargs=dict(context=ctx, framer=FramerType.RTU, port=modem.a, baudrate=9600),
        daemon=True,
    )
    th.start()
    meter = None
    try:
        meter = M.PzemMeter(modem.b, address=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                s = meter.read()
                break
            except MeterError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert (s.voltage_v, s.current_a, s.power_w, s.frequency_hz, s.power_factor) == (
            220.0,
            1.0,
            220.0,
            50.0,
            1.0,
        )
    finally:
        if meter is not None:
            meter.close()
        try:
            server_mod.ServerStop()
        except RuntimeError:
            pass
        th.join(5)
        modem.close()


# ------------------------------------------------------------------ HTTP plugs

TASMOTA = {
    "StatusSNS": {
        "Time": "2024-01-01T12:00:00",
        "ENERGY": {
            "TotalStartTime": "2023-11-01T10:00:00",
            "Total": 12.345,
            "Yesterday": 0.5,
            "Today": 0.2,
            "Power": 87,
            "ApparentPower": 95,
            "ReactivePower": 38,
            "Factor": 0.92,
            "Voltage": 231,
            "Current": 0.41,
        },
    }
}
SHELLY_GEN1 = {"power": 64.5, "overpower": 0, "is_valid": True, "timestamp": 0, "total": 6000}
SHELLY_GEN2 = {
    "id": 0,
    "source": "init",
    "output": True,
    "apower": 71.3,
    "voltage": 229.9,
    "current": 0.35,
    "freq": 50.0,
    "aenergy": {"total": 1234.5, "by_minute": [0, 0, 0], "minute_ts": 1700000000},
    "temperature": {"tC": 40.1, "tF": 104.2},
}


class _Plug(BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):  # noqa: N802 - http.server API
        body = self.routes.get(self.path)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


@pytest.fixture
def plug_server():
    servers = []

    def start(routes):
        handler = type("H", (_Plug,), {"routes": routes})
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"127.0.0.1:{srv.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def test_tasmota_over_http(plug_server):
    host = plug_server({"/cm?cmnd=Status%2010": TASMOTA})
    s = M.open_meter(f"tasmota:{host}").read(5.0)
    assert (s.t_s, s.power_w, s.voltage_v, s.current_a) == (5.0, 87.0, 231.0, 0.41)
    assert s.energy_wh == pytest.approx(12345.0)
    assert s.power_factor == 0.92


def test_shelly_gen2_then_gen1(plug_server):
    s = M.open_meter("shelly:" + plug_server({"/rpc/Switch.GetStatus?id=0": SHELLY_GEN2})).read()
    assert (s.power_w, s.voltage_v, s.energy_wh) == (71.3, 229.9, 1234.5)
    g1 = M.open_meter("shelly:" + plug_server({"/meter/0": SHELLY_GEN1}))
    s1 = g1.read()
    assert s1.power_w == 64.5
    assert s1.energy_wh == pytest.approx(100.0)  # 6000 watt-minutes
    assert g1.url.endswith("/meter/0")


def test_http_meter_errors_are_clear(plug_server):
    host = plug_server({})
    with pytest.raises(MeterError, match="did not answer"):
        M.TasmotaMeter(host, timeout_s=1.0).read()
    with pytest.raises(MeterError, match="expected KIND"):
        M.open_meter("watts:/dev/x")


def test_integral_beats_counter_for_short_prints():
    """A 20 min print at 60 W is 20 Wh: the trapezoid integral of 1 s samples gives 72 kJ
    exactly, the 1 Wh counter only to ±1 Wh (±5 %)."""
    t = [float(i) for i in range(1201)]
    p = [60.0] * len(t)
    assert M.integrate_energy_j(t, p) == pytest.approx(72000.0)
    with pytest.raises(ValueError, match="backwards"):
        M.integrate_energy_j([0.0, 2.0, 1.0], [1.0, 1.0, 1.0])
    assert struct.calcsize(">f") == 4


def test_meter_vanishing_is_a_clear_error():
    clock = SimClock(10.0)
    vm = VirtualMeter(_physics_at(), clock, "pzem", seed=1).start()
    meter = None
    try:
        meter = M.PzemMeter(vm.path, timeout_s=0.2)
        assert meter.read().voltage_v is not None
        vm.stop()  # the USB adapter is pulled
        with pytest.raises(MeterError, match="meter"):
            meter.read()
    finally:
        if meter is not None:
            meter.close()
        vm.stop()  # idempotent: stops it when the test failed before pulling it
