"""Table: our time_s vs the slicer's estimate vs the measured print time (corpus files).

Run: python benchmarks/gcode_measured.py [../shared]
The theshamot files were sliced by PrusaSlicer 2.3 (Marlin flavour) and printed on an
Ender-3 running Klipper; its printer.cfg is in corpus/gcode/printer_configs/.
"""

from __future__ import annotations

import re
import statistics
import sys
from pathlib import Path

from slicer_energy.gcode.analyze import analyze_file
from slicer_energy.gcode.klipper_config import machine_from_klipper_config
from slicer_energy.machine import load_machine


def measured_table(shared: Path) -> list[tuple[str, float, float, float, float]]:
    corpus = shared / "corpus"
    rows = []
    readme = (corpus / "README.md").read_text()
    base = load_machine("ender3-v2")
    m = machine_from_klipper_config(
        corpus / "gcode/printer_configs/theshamot_klipper_printer.cfg", base
    )
    for line in readme.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) < 8 or not cells[1].endswith(".gcode.gz") or not cells[6]:
            continue
        name, est, meas = cells[1], float(cells[5]), cells[6]
        meas_s = statistics.mean(float(x) for x in meas.split(";"))
        res = analyze_file(corpus / "gcode" / name, m, keep_rows=False)
        rows.append((name, res.time_s, res.print_time_s, est, meas_s))
    return rows


def main() -> None:
    shared = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared"
    )
    rows = measured_table(shared)
    print(
        "| file | ours time_s | ours motion s | slicer est s | measured s "
        "| ours err % | ours motion err % | slicer err % |"
    )
    print("|---|---|---|---|---|---|---|---|")
    eo, es, em = [], [], []
    for name, t, pt, est, meas in rows:
        e1, e2 = 100 * (t - meas) / meas, 100 * (est - meas) / meas
        e3 = 100 * (pt - meas) / meas
        eo.append(abs(e1))
        es.append(abs(e2))
        em.append(abs(e3))
        short = re.sub(r"_0\.2mm_PLA_ENDER3_\w+$", "", name.replace(".gcode.gz", ""))
        short = short.replace("theshamot__", "")
        print(
            f"| {short} | {t:.0f} | {pt:.0f} | {est:.0f} | {meas:.0f} "
            f"| {e1:+.1f} | {e3:+.1f} | {e2:+.1f} |"
        )
    print(
        f"\nmedian |error|: ours {statistics.median(eo):.1f} %, "
        f"ours motion only {statistics.median(em):.1f} %, "
        f"slicer {statistics.median(es):.1f} % over {len(rows)} prints"
    )


if __name__ == "__main__":
    main()
