"""Smart-plug power exports: formats, time zones, units, gaps, and clear errors.

The generic reader is checked on real meter logs from the corpus against the logger's own
energy counter; the other formats are written here exactly as the devices/apps write them
(header and field names from their documentation, cited per test) with known values.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from slicer_energy.calib.inputs.plug import detect_format, parse_time, read_plug
from slicer_energy.errors import CalibrationError

from conftest import need_shared

UTC = dt.timezone.utc


def _unix(*a, tz=UTC) -> float:
    return dt.datetime(*a, tzinfo=tz).timestamp()


@pytest.mark.parametrize(
    ("name", "wh_readme"),
    [("raw_baseline_l3.csv", 143.4), ("raw_baseline_l2.csv", 174.4)],
)
def test_generic_csv_real_meter_log_energy_matches_its_counter(name, wh_readme):
    """A PZEM-017 logger's CSV (Timestamp, Power (W), Delta Time (s), Cumulative Energy (Wh)):
    the trapezoid energy over our times matches the logger's own counter (last row) and the
    corpus README's figure. The l2 run has whole-minute times, so spacing comes from the
    logger's interval column (said in a note)."""
    path = need_shared("corpus", "power", "ender3_pzem017", name)
    tr = read_plug(path, naive_tz="UTC")
    assert tr.fmt == "generic"
    e_wh = float(np.sum(0.5 * (tr.power_w[1:] + tr.power_w[:-1]) * np.diff(tr.t_s))) / 3600.0
    counter_wh = float(path.read_text().strip().splitlines()[-1].split(",")[-1])
    assert e_wh == pytest.approx(counter_wh, rel=0.01)
    assert e_wh == pytest.approx(wh_readme, rel=0.01)
    assert not tr.gaps
    first = path.read_text().splitlines()[1].split(",")[0]
    if name.endswith("l3.csv"):
        assert tr.t_s[0] == _unix(2025, 11, 30, 12, 32, 27)  # "2025-11-30 12:32:27" as UTC
        assert not tr.notes
    else:
        assert first == "30-11-2025 14:41"  # day-first, minutes only
        assert tr.t_s[0] == _unix(2025, 11, 30, 14, 41)
        assert "resolution" in tr.notes[0]


def test_home_assistant_history_export(tmp_path):
    """History panel > Download data: entity_id,state,last_changed; UTC ISO times; states
    are strings, 'unavailable'/'unknown' while the integration had no value."""
    p = tmp_path / "history.csv"
    p.write_text(
        "entity_id,state,last_changed\n"
        "sensor.plug_power,12.5,2026-05-01T12:00:00.000Z\n"
        "sensor.plug_power,250.1,2026-05-01T12:00:01.512Z\n"
        "sensor.plug_power,unavailable,2026-05-01T12:00:03.000Z\n"
        "sensor.plug_power,unknown,2026-05-01T12:02:00.000Z\n"
        "sensor.plug_power,248.0,2026-05-01T12:05:00+00:00\n"
        "sensor.plug_power,30.2,2026-05-01T12:05:02.250000+00:00\n"
        "sensor.plug_voltage,unavailable,2026-05-01T12:00:00.000Z\n"
    )
    assert detect_format(p) == "home-assistant"
    tr = read_plug(p)
    t0 = _unix(2026, 5, 1, 12)
    # a state holds until the next row (HA stores changes only): 12.5 W stood for the plug's
    # readings from -1 s (its 1 s mean) until the 250.1 W row; none is assumed across the
    # unavailable stretch
    np.testing.assert_allclose(tr.t_s - t0, [0.512, 1.512, 301.25, 302.25], atol=1e-6)
    np.testing.assert_allclose(tr.window_s, [1.512, 1.0, 2.25, 1.0], atol=1e-6)
    np.testing.assert_allclose(tr.power_w, [12.5, 250.1, 248.0, 30.2])
    assert tr.gaps == [(t0 + 1.512, t0 + 300.0)]  # until HA had a value again; not filled
    assert "1 gap" in tr.notes[0] and "298 s" in tr.notes[0]


def test_home_assistant_several_power_entities_need_a_choice(tmp_path):
    p = tmp_path / "history.csv"
    rows = ["entity_id,state,last_changed"]
    for i in range(5):
        rows.append(f"sensor.printer_power,{100 + i},2026-05-01T12:00:0{i}Z")
        rows.append(f"sensor.fridge_power,{60 + i},2026-05-01T12:00:0{i}Z")
    p.write_text("\n".join(rows) + "\n")
    with pytest.raises(CalibrationError, match=r"history\.csv.*2 entities.*--plug-entity"):
        read_plug(p)
    tr = read_plug(p, entity="sensor.fridge_power")
    np.testing.assert_allclose(tr.power_w, [60, 61, 62, 63, 64])
    with pytest.raises(CalibrationError, match="no entity 'sensor.nope'"):
        read_plug(p, entity="sensor.nope")


def test_tasmota_sensor_and_status10_lines(tmp_path):
    """Tasmota telemetry as ``mosquitto_sub -v`` prints it: ``tele/<topic>/SENSOR`` with
    ENERGY.Power (W) and Time in the device's local time (tasmota.github.io/docs/MQTT,
    "Energy monitoring"); ``STATUS10`` wraps the same in StatusSNS. Multi-channel Power is a
    list (summed)."""
    energy = '"TotalStartTime":"2026-04-01T10:00:00","Total":12.345,"Yesterday":0.5,"Today":0.2'
    lines = [
        f'tele/plug/SENSOR {{"Time":"2026-05-01T14:00:00","ENERGY":{{{energy},"Power":57}}}}',
        f'tele/plug/SENSOR {{"Time":"2026-05-01T14:00:10","ENERGY":{{{energy},"Power":301}}}}',
        "tele/plug/STATE " + json.dumps({"Time": "2026-05-01T14:00:15", "Uptime": "0T00:10:00"}),
        "stat/plug/STATUS10 "
        + json.dumps(
            {"StatusSNS": {"Time": "2026-05-01T14:00:20", "ENERGY": {"Power": [100, 50]}}}
        ),
        json.dumps({"Time": "2026-05-01T14:00:30+02:00", "ENERGY": {"Power": 12}}),
    ]
    p = tmp_path / "tasmota.log"
    p.write_text("\n".join(lines) + "\n")
    assert detect_format(p) == "tasmota"
    cest = dt.timezone(dt.timedelta(hours=2))
    tr = read_plug(p, naive_tz="Europe/Berlin")  # the plug's Timezone setting
    np.testing.assert_allclose(tr.t_s - _unix(2026, 5, 1, 14, tz=cest), [0, 10, 20, 30])
    np.testing.assert_allclose(tr.power_w, [57, 301, 150, 12])


def test_shelly_gen1_em_data_csv(tmp_path):
    """Shelly EM (Gen1) ``/emeter/0/em_data.csv``: ``Date/time UTC,Active energy Wh (1),
    Returned energy Wh (1),Min V,Max V``, one row per interval: Wh per interval -> mean W."""
    p = tmp_path / "em_data.csv"
    p.write_text(
        "Date/time UTC,Active energy Wh (1),Returned energy Wh (1),Min V,Max V\n"
        "2026-05-01 12:00,0.20,0.00,229.5,231.0\n"
        "2026-05-01 12:01,4.50,0.00,229.0,231.2\n"
        "2026-05-01 12:02,1.00,0.00,229.1,230.9\n"
        "2026-05-01 12:0"  # a download cut mid-line
    )
    assert detect_format(p) == "shelly-gen1"
    tr = read_plug(p, naive_tz="Europe/Berlin")  # ignored: the header says UTC
    np.testing.assert_allclose(tr.t_s - _unix(2026, 5, 1, 12), [60, 120, 180])  # window ends
    np.testing.assert_allclose(tr.power_w, [12.0, 270.0, 60.0])
    np.testing.assert_allclose(tr.window_s, 60.0)


def test_shelly_gen2_emdata_csv_sums_phases(tmp_path):
    """Shelly Pro 3EM ``/emdata/0/data.csv?add_keys=true``: ``timestamp`` (Unix s) and
    ``a_/b_/c_total_act_energy`` (Wh per minute)."""
    p = tmp_path / "data.csv"
    t0 = 1_777_636_800
    rows = ["timestamp,a_total_act_energy,a_max_act_power,b_total_act_energy,c_total_act_energy"]
    for i, (a, b, c) in enumerate([(1.0, 0.5, 0.0), (2.0, 0.5, 0.5), (0.1, 0.0, 0.0)]):
        rows.append(f"{t0 + 60 * i},{a},999,{b},{c}")
    p.write_text("\n".join(rows) + "\n")
    assert detect_format(p) == "shelly-gen2"
    tr = read_plug(p)
    np.testing.assert_allclose(tr.t_s, [t0 + 60, t0 + 120, t0 + 180])
    np.testing.assert_allclose(tr.power_w, [90.0, 180.0, 6.0])


def test_generic_units_and_time_zones(tmp_path):
    p = tmp_path / "kw.csv"
    p.write_text("time,power (kW)\n2026-01-10 08:00:00,0.012\n2026-01-10 08:00:01,0.25\n"
                 "2026-01-10 08:00:02,0.0305\n")  # fmt: skip
    naive_utc = read_plug(p, naive_tz="UTC")
    np.testing.assert_allclose(naive_utc.power_w, [12.0, 250.0, 30.5])  # kW from the header
    berlin = read_plug(p, naive_tz="Europe/Berlin")  # CET in January
    np.testing.assert_allclose(naive_utc.t_s - berlin.t_s, 3600.0)
    assert read_plug(p, naive_tz="+01:00").t_s[0] == berlin.t_s[0]
    local = read_plug(p)  # default: this computer's zone, as the docs say
    want = dt.datetime(2026, 1, 10, 8).astimezone().timestamp()
    assert local.t_s[0] == pytest.approx(want)
    # a value column without a unit that never exceeds 2: kW or a printer that is off; ask
    q = tmp_path / "nounit.csv"
    q.write_text("timestamp,power\n1700000000,0.012\n1700000001,0.25\n1700000002,0.03\n")
    with pytest.raises(CalibrationError, match=r"nounit\.csv.*--plug-unit kW"):
        read_plug(q)
    np.testing.assert_allclose(read_plug(q, unit="kW").power_w, [12.0, 250.0, 30.0])
    # Tasmota telemetry flattened to CSV (Node-RED, Telegraf): the Power field, not Total
    f = tmp_path / "tasmota.csv"
    f.write_text("Time,ENERGY_Total,ENERGY_Power\n2026-01-10T08:00:00,12.3,55\n"
                 "2026-01-10T08:00:10,12.3,260\n2026-01-10T08:00:20,12.4,70\n")  # fmt: skip
    np.testing.assert_allclose(read_plug(f, naive_tz="UTC").power_w, [55, 260, 70])
    # Unix milliseconds are recognised
    m = tmp_path / "ms.csv"
    m.write_text("timestamp,W\n1700000000000,12\n1700000001500,250\n1700000002000,30\n")
    np.testing.assert_allclose(read_plug(m).t_s, [1.7e9, 1.7e9 + 1.5, 1.7e9 + 2.0])


def test_gaps_are_reported_not_filled(tmp_path):
    p = tmp_path / "gappy.csv"
    t = list(range(0, 100)) + list(range(400, 500))  # 5 minutes without readings
    p.write_text("timestamp,power_w\n" + "".join(f"{1.7e9 + x:.0f},{50 + x % 7}\n" for x in t))
    tr = read_plug(p)
    assert tr.t_s.size == 200  # nothing invented
    assert tr.gaps == [(1.7e9 + 99, 1.7e9 + 400 - 1)]  # to the next reading's 1 s window
    assert "300 s" in tr.notes[0]


def test_jitter_duplicates_and_order(tmp_path):
    p = tmp_path / "jitter.csv"
    rng = np.random.default_rng(3)
    t = 1.7e9 + np.arange(50) + rng.uniform(-0.3, 0.3, 50)
    body = "".join(f"{x:.3f},{100 + i}\n" for i, x in enumerate(t))
    p.write_text("timestamp,W\n" + body + f"{t[-1]:.3f},999\n")  # a repeated last reading
    tr = read_plug(p)
    assert tr.t_s.size == 50 and tr.power_w[-1] == 999  # the later of two equal times
    assert not tr.gaps
    bad = tmp_path / "backwards.csv"
    bad.write_text("timestamp,W\n1700000000,10\n1700000002,10\n1700000001,10\n1700000003,10\n")
    with pytest.raises(CalibrationError, match=r"backwards\.csv: line 4: time goes backwards"):
        read_plug(bad)


def test_interval_only_trace_needs_its_start():
    """The trimmed corpus runs have intervals but no times: read by the bare-trace reader,
    anchored where the user says the first reading was."""
    path = need_shared("corpus", "power", "ender3_pzem017", "trimmed_baseline_l3_modified.csv")
    with pytest.raises(CalibrationError, match=r"trimmed_baseline_l3_modified\.csv.*--plug-start"):
        read_plug(path)
    tr = read_plug(path, start="2025-11-30T12:40:00+00:00")
    assert tr.t_s[0] == _unix(2025, 11, 30, 12, 40)
    rows = path.read_text().strip().splitlines()
    assert tr.t_s[-1] - tr.t_s[0] == pytest.approx(
        float(rows[-1].split(",")[-1]) - float(rows[1].split(",")[-1]), abs=1e-6
    )


def test_unknown_format_names_the_file(tmp_path):
    p = tmp_path / "mystery.csv"
    p.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(CalibrationError, match=r"mystery\.csv: unknown power-trace format"):
        read_plug(p)
    with pytest.raises(CalibrationError, match=r"missing\.csv: power trace not found"):
        read_plug(tmp_path / "missing.csv")
    t = tmp_path / "tasmota_bad.log"
    t.write_text("".join('{"Time":"x","ENERGY":{"Power":1}}\n' for _ in range(5)))
    with pytest.raises(CalibrationError, match=r"tasmota_bad\.log: 5 Tasmota lines"):
        read_plug(t)


def test_parse_time_forms():
    assert parse_time("2026-05-01T12:00:00Z") == _unix(2026, 5, 1, 12)
    assert parse_time("2026-05-01T12:00:00.123456789+00:00") == pytest.approx(
        _unix(2026, 5, 1, 12) + 0.123457, abs=1e-6
    )
    assert parse_time("2026-05-01 14:00:00", "+02:00") == _unix(2026, 5, 1, 12)
    with pytest.raises(CalibrationError, match="unknown time zone 'Mars/Olympus'"):
        parse_time("2026-05-01 14:00:00", "Mars/Olympus")
