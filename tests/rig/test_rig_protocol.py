"""Pure protocol functions against real firmware lines (sources in each row)."""

from __future__ import annotations

import pytest

from slicer_energy.rig import protocol as P

from conftest import CORPUS, need_shared


def _prusa_heaters_off(t0: float, bed: float, *, pinda: float, ambient: float) -> dict:
    """What a Prusa M105 answer with both heaters off holds: hotend and bed (target 0, PWM 0),
    the PINDA probe ``P:`` and the ambient ``A:`` sensor (readings only)."""
    return {
        "T0": (t0, 0.0, 0, None),
        "B": (bed, 0.0, 0, None),
        "P": (pinda, None, None, None),
        "A": (ambient, None, None, None),
    }


# (line as the firmware printed it, expected {sensor: (actual, target, pwm_raw, watts)}, source)
TEMP_TABLE = [
    (
        "ok T:245.00 /245.00 B:79.39 /80.00 @:89 B@:127",
        {"T0": (245.0, 245.0, 89, None), "B": (79.39, 80.0, 127, None)},
        "Marlin 1.1.9, corpus serial/guidugast_pronterface.log",
    ),
    (
        " T:245.00 /245.00 B:79.83 /84.00 @:88 B@:127 W:?",
        {"T0": (245.0, 245.0, 88, None), "B": (79.83, 84.0, 127, None)},
        "Marlin 1.1.9 M109/M190 wait report, corpus serial/guidugast_pronterface.log",
    ),
    (
        "ok T:293.0 /0.0 B:25.9 /0.0 T0:293.0 /0.0 T1:100.0 /0.0 @:0 B@:0 @0:0 @1:0",
        {"T0": (293.0, 0.0, 0, None), "T1": (100.0, 0.0, 0, None), "B": (25.9, 0.0, 0, None)},
        "Marlin multi-extruder, cncjs/cncjs@7040e86 MarlinLineParserResultTemperature.js",
    ),
    (
        "ok T:293.0 /0.0 (0.0) B:25.9 /0.0 T0:293.0 /0.0 (0.0) T1:100.0 /0.0 (0.0) @:0 B@:0 "
        "@0:0 @1:0 W:0",
        {"T0": (293.0, 0.0, 0, None), "T1": (100.0, 0.0, 0, None), "B": (25.9, 0.0, 0, None)},
        "Marlin with raw ADC values, same cncjs file",
    ),
    (
        "ok T0:27.58 /0.00 B:28.27 /0.00 T0:27.58 /0.00 T1:27.37 /0.00 @:0 B@:0 @0:0 @1:0",
        {"T0": (27.58, 0.0, 0, None), "T1": (27.37, 0.0, 0, None), "B": (28.27, 0.0, 0, None)},
        "Marlin 2 dual extruder (T0 printed twice), same cncjs file",
    ),
    (
        "ok T:20.2 /0.0 B:19.1 /0.0 T0:20.2 /0.0 @:0 B@:0 P:19.8 A:26.4",
        _prusa_heaters_off(20.2, 19.1, pinda=19.8, ambient=26.4),
        "Prusa firmware MK3 M105 documentation example (PINDA P:, ambient A:)",
    ),
    (
        "ok T:209.6 /0.0 B:94.9 /0.0 T0:209.6 /0.0 @:0 B@:0 P:53.5 A:42.2",
        _prusa_heaters_off(209.6, 94.9, pinda=53.5, ambient=42.2),
        "Prusa MK3 real-world log lines in an OctoPrint MMU plugin's tests",
    ),
    (
        "T:36.3 /0.0 B:31.7 /0.0 T0:36.3 /0.0 @:0.00W B@:0",
        {"T0": (36.3, 0.0, None, 0.0), "B": (31.7, 0.0, 0, None)},
        "heater output in watts (brahma3 line quoted in a host's parser comments)",
    ),
    (
        "ok T:215.0 /215.0 B:60.0 /60.0 T0:215.0 /215.0 @:26W B@:88",
        {"T0": (215.0, 215.0, None, 26.0), "B": (60.0, 60.0, 88, None)},
        "Prusa-style watts form named in issue 6 (@:26W)",
    ),
    (
        "ok B:60.0 /60.0 T0:210.0 /210.0",
        {"B": (60.0, 60.0, None, None), "T0": (210.0, 210.0, None, None)},
        "Klipper: klippy/extras/heaters.py cmd_M105 ('%s:%.1f /%.1f', sorted ids)",
    ),
    (
        "ok T:0",
        {"T0": (0.0, None, None, None)},
        "Klipper before the printer is ready (same function returns 'T:0')",
    ),
    (
        "ok T:24.5 B:23.9 H0:23.9/0.0 H1:24.5/210.0",
        {
            "T0": (24.5, None, None, None),
            "B": (23.9, None, None, None),
            "H0": (23.9, 0.0, None, None),
            "H1": (24.5, 210.0, None, None),
        },
        "RepRapFirmware 1.x: Duet3D/RepRapFirmware src/GCodes.cpp M105 "
        "('T:' ' B:' ' H%d:%.1f/%.1f')",
    ),
    (
        "T:20.00 B:-1.00 @:0",
        {"T0": (20.0, None, 0, None), "B": (-1.0, None, None, None)},
        "Repetier-Firmware (no targets, bed absent reads -1), as quoted in a host's parser",
    ),
]


@pytest.mark.parametrize("line,expected,source", TEMP_TABLE, ids=[r[2][:40] for r in TEMP_TABLE])
def test_temperature_table(line, expected, source):
    rep = P.parse_temperatures(line)
    assert rep is not None, source
    assert set(rep.heaters) == set(expected), (source, rep.heaters)
    for name, (actual, target, pwm, watts) in expected.items():
        h = rep.heaters[name]
        assert h.actual_c == pytest.approx(actual)
        assert h.target_c == (None if target is None else pytest.approx(target))
        assert h.pwm_raw == (None if pwm is None else pytest.approx(pwm))
        assert h.power_w == (None if watts is None else pytest.approx(watts))


@pytest.mark.parametrize(
    "line",
    [
        "X:0.00 Y:0.00 Z:0.00 E:0.00 Count X:0 Y:0 Z:-4396",  # M114 in the corpus log
        "echo:  M205 Q20000 S0.00 T0.00 X10.00 Y10.00 Z0.30 E5.00",  # M503 line in the corpus
        "echo:  M145 S0 H180 B70 F0",
        "ok",
        "echo:busy: processing",
        "Resend: 12",
    ],
)
def test_not_temperatures(line):
    assert P.parse_temperatures(line) is None


def test_pronterface_logs_every_temperature_line_parses():
    """Every temperature line of the real Marlin 1.1.9 logs yields hotend and bed with targets
    and PWM, and the values match the text (independent check with split())."""
    need_shared("corpus", "serial")
    n = 0
    for path in sorted((CORPUS / "serial").glob("*.log")):
        for raw in path.read_text(errors="replace").splitlines():
            line = raw.strip()
            if not (line.startswith("T:") or line.startswith("ok T:")):
                continue
            rep = P.parse_temperatures(line)
            assert rep is not None, line
            toks = line.replace("ok ", "").split()
            assert rep.heaters["T0"].actual_c == float(toks[0][2:])
            assert rep.heaters["T0"].target_c == float(toks[1][1:])
            assert rep.heaters["B"].actual_c == float(toks[2][2:])
            assert rep.heaters["B"].pwm_raw == float(toks[5][3:])
            n += 1
    assert n >= 20


def test_checksum_known_lines():
    # RepRap wiki (G-code page, 2012 revision) example: "N3 T0*57", "N4 G92 E0*67", "N5 G28*22",
    # "N6 G1 F1500.0*82", "N7 G1 X2.0 Y2.0 F3000.0*85", "N8 G1 X3.0 Y3.0*33"
    for n, cmd, cs in [
        (3, "T0", 57),
        (4, "G92 E0", 67),
        (5, "G28", 22),
        (6, "G1 F1500.0", 82),
        (7, "G1 X2.0 Y2.0 F3000.0", 85),
        (8, "G1 X3.0 Y3.0", 33),
    ]:
        assert P.numbered_line(n, cmd) == f"N{n} {cmd}*{cs}"
        assert P.split_numbered(f"N{n} {cmd}*{cs}") == (n, cmd, cs)


def test_strip_and_resend_and_ok():
    assert P.strip_gcode("G1 X1 Y2 ; perimeter") == "G1 X1 Y2"
    assert P.strip_gcode("; only a comment") == ""
    assert P.strip_gcode("G1 (inline) X5") == "G1  X5"
    assert P.parse_resend("Resend: 12") == 12
    assert P.parse_resend("Resend:7") == 7
    assert P.parse_resend("rs N33") == 33
    assert P.parse_resend("ok") is None
    assert P.is_ok("ok") and P.is_ok("ok T:20 /0") and not P.is_ok("okay")
    adv = P.parse_advanced_ok("ok N12 P15 B3")
    assert adv == P.AdvancedOk(12, 15, 3)


def test_errors_classified():
    assert P.error_text("Error:checksum mismatch, Last Line: 5") == (
        "checksum mismatch, Last Line: 5",
        False,
    )
    msg, fatal = P.error_text("Error:Printer halted. kill() called!")
    assert fatal and "halted" in msg
    assert P.error_text("Error:Heating failed, system stopped! Heater_ID: 0")[1] is True
    assert P.error_text("!! Lost communication with MCU 'mcu'") == (
        "Lost communication with MCU 'mcu'",
        True,
    )
    assert P.error_text("echo:Unknown command") is None


def test_m115_caps():
    lines = [
        "FIRMWARE_NAME:Marlin 2.1.2.1 (Github) SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin "
        "PROTOCOL_VERSION:1.0 MACHINE_TYPE:Ender-3 V2 EXTRUDER_COUNT:1 UUID:cede2a2f-41a2",
        "Cap:SERIAL_XON_XOFF:0",
        "Cap:AUTOREPORT_TEMP:1",
        "Cap:EMERGENCY_PARSER:1",
        "ok",
    ]
    info = P.parse_m115(lines)
    assert info.name == "Marlin 2.1.2.1 (Github)"
    assert info.fields["MACHINE_TYPE"] == "Ender-3 V2"
    assert info.fields["EXTRUDER_COUNT"] == "1"
    assert info.cap("AUTOREPORT_TEMP") and not info.cap("SERIAL_XON_XOFF")
    assert not info.cap("NOT_THERE")


def test_position_progress_time():
    pos = P.parse_position("X:0.00 Y:0.00 Z:0.00 E:0.00 Count X:0 Y:0 Z:-4396")
    assert pos == {"X": 0.0, "Y": 0.0, "Z": 0.0, "E": 0.0}
    assert P.parse_position("ok T:20 /0 B:20 /0") is None
    assert P.parse_sd_progress("SD printing byte 1234/56789") == (1234, 56789)
    assert P.parse_sd_progress("Not SD printing") is False
    assert P.parse_m73("NORMAL MODE: Percent done: 12; print time remaining in mins: 30") == (
        12.0,
        30.0,
    )
    assert P.parse_m73("echo:  M73 Progress: 45%;") == (45.0, None)
    assert P.parse_print_time_s("echo:Print time: 1h 2m 3s") == 3723.0
    assert P.parse_print_time_s("echo:Print time: 12m 5s") == 725.0
    assert P.parse_print_time_s("echo:12 min, 5 sec") == 725.0
