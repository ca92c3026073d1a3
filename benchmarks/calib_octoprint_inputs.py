"""Calibration from OctoPrint serial.log + smart-plug CSV vs from a rig session, same printer.

For each printer seed: (a) a real OctoPrint (MachineCom) prints the demo part on the virtual
printer while the virtual meter is read each second; the readings are exported as a Home
Assistant history CSV from a plug whose clock is off by a known offset; we estimate the
offset and calibrate from the two files. (b) ``rig demo`` records a session of the same
part on the same printer (our host and logger); we calibrate from it. Both fits are
compared with the simulator's hidden truth on what a wall meter determines (heater P/η,
P·R, R·C; base power/η), the truth as its first-order equivalents at the print's operating
point (``PrinterParams.effective``: the simulator's own physics is richer).

    python benchmarks/calib_octoprint_inputs.py            # printer seeds 1 2 3
    python benchmarks/calib_octoprint_inputs.py --seeds 4
    python benchmarks/calib_octoprint_inputs.py --clock    # offset recovery only (fast)

``--clock``: the offset estimate alone on the simulator's physics sampled as a host (heater
reports every 2 s) and a plug (1 s, ±1 W) would (``tests/calib/test_calib_clock.py``), for several
printers, offsets, with and without the heater-output field, ms or whole-second plug times.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "calib")]  # the recorded OctoPrint print it reuses

from test_calib_octoprint_rig import record_octoprint_print, write_home_assistant_csv  # noqa: E402

from slicer_energy.calib.fit import fit_sessions  # noqa: E402
from slicer_energy.calib.inputs.octoprint import load_octoprint_session  # noqa: E402
from slicer_energy.calib.inputs.session import load_session  # noqa: E402
from slicer_energy.machine import load_machine  # noqa: E402
from slicer_energy.rig.sim.demo import run_demo  # noqa: E402
from slicer_energy.rig.sim.printer import demo_gcode  # noqa: E402


def errors(fit, truth: dict) -> dict[str, float]:
    eta_t = truth["electrical"]["psu_efficiency"]
    eta = fit.value("electrical.psu_efficiency")
    out = {}
    for h in ("hotend", "bed"):
        p, r, c = (fit.value(f"{h}.{k}") for k in ("p_max_w", "r_k_per_w", "c_j_per_k"))
        tp, tr, tc = (truth[h][k] for k in ("p_max_w", "r_k_per_w", "c_j_per_k"))
        out[f"{h} P/η"] = p / eta / (tp / eta_t) - 1
        out[f"{h} P·R"] = p * r / (tp * tr) - 1
        out[f"{h} R·C"] = r * c / (tr * tc) - 1
    pe = fit.value("electrical.p_electronics_w") / eta
    out["base/η"] = pe / (truth["electrical"]["p_electronics_w"] / eta_t) - 1
    return out


def clock_sweep() -> None:
    import test_calib_clock as sim

    from slicer_energy.calib.inputs.clock import estimate_offset, host_power_features

    print("| printer | heater output | plug times | true offset s | estimate s | error s | ± s |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        for ps in (5, 1, 2):
            heaters, meter, span = sim._simulate(printer_seed=ps)
            for duty in (True, False):
                for off, dec in ((-250.0, 3), (17.6, 3), (480.2, 3), (-61.4, 0)):
                    plug = sim._plug_csv(Path(d) / "p.csv", meter, off, dec)
                    e = estimate_offset(host_power_features(heaters, duty, *span), plug, span)
                    print(
                        f"| {ps} | {'@:' if duty else 'none'} | {'ms' if dec else 's'} "
                        f"| {off:+.1f} | {e.offset_s:+.2f} | {e.offset_s - off:+.2f} "
                        f"| {e.stderr_s:.2f} |"
                    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--offset", type=float, default=-93.7, help="plug clock − host clock, s")
    ap.add_argument("--clock", action="store_true", help="offset recovery sweep only")
    a = ap.parse_args()
    if a.clock:
        clock_sweep()
        return
    base = load_machine("ender3-v2")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for seed in a.seeds:
            out = Path(d) / f"p{seed}"
            rec = record_octoprint_print(out / "octoprint", printer_seed=seed, seed=10 + seed)
            csv = out / "history.csv"
            gap = (rec.meter[300][0], rec.meter[320][0])
            write_home_assistant_csv(csv, rec.meter, a.offset, unavailable=gap)
            s, est = load_octoprint_session(rec.serial_log, csv, gcode=rec.gcode)
            truth = rec.params.effective()  # the demo part's set points, 210/60 °C
            e_op = errors(fit_sessions([s], base), truth)
            demo = run_demo(
                out / "rig",
                printer_seed=seed,
                seed=10 + seed,
                scale=50.0,
                tail_s=300,
                gcode_lines=demo_gcode(layers=10, size_mm=25.0),
            )
            t2 = tomllib.loads(demo.truth_path.read_text())["effective"]  # the benchmark checks
            e_rig = errors(fit_sessions([load_session(demo.session.folder)], base), t2)
            rows.append((seed, est, e_op, e_rig))
    keys = list(rows[0][2])
    print(f"clock offset injected {a.offset:+.1f} s (plug − host)\n")
    print("| printer seed | offset estimate (s) | ± (s) | " + " | ".join(keys) + " |")
    print("|---|---|---|" + "---|" * len(keys))
    for seed, est, e_op, e_rig in rows:
        cells = [f"{100 * e_op[k]:+.1f} / {100 * e_rig[k]:+.1f}" for k in keys]
        print(f"| {seed} | {est.offset_s:+.1f} | {est.stderr_s:.1f} | " + " | ".join(cells) + " |")
    print("\ncells: error % from OctoPrint serial.log + HA CSV / from a rig session")


if __name__ == "__main__":
    main()
