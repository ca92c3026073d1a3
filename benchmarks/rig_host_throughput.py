"""Lines per second streamed to the virtual printer: our host vs Printrun's printcore.

Both hosts print the same command-only program (G92/M117, no motion, so the printer never
waits) on a fresh virtual printer over a pty, one line in flight. Prints both rates and their
ratio, measured in the same run. Usage: python benchmarks/rig_host_throughput.py [N_LINES]
"""

from __future__ import annotations

import sys
import time

from slicer_energy.rig.marlin import connect
from slicer_energy.rig.sim.physics import SimClock, draw_printer
from slicer_energy.rig.sim.printer import VirtualPrinter


def program(n: int) -> list[str]:
    return [f"M117 line {i}" if i % 2 else f"G92 E{i}" for i in range(n)]


def ours(lines: list[str]) -> float:
    p = VirtualPrinter(draw_printer(1), SimClock(1.0)).start()
    try:
        host = connect(p.path, 115200, handshake_wait_s=1.0)
        t0 = time.perf_counter()
        host.start_print(lines)
        job = host.wait_job(600)
        dt = time.perf_counter() - t0
        assert job.state == "done", job
        host.close()
        return len(lines) / dt
    finally:
        p.stop()


def printcore_rate(lines: list[str]) -> float | None:
    try:
        from printrun import gcoder
        from printrun.printcore import printcore
    except ImportError:
        return None
    p = VirtualPrinter(draw_printer(1), SimClock(1.0)).start()
    try:
        pc = printcore(p.path, 115200)
        while not pc.online:
            time.sleep(0.01)
        t0 = time.perf_counter()
        pc.startprint(gcoder.LightGCode(lines))
        while pc.printing or not pc.clear:
            time.sleep(0.001)
        dt = time.perf_counter() - t0
        pc.disconnect()
        return len(lines) / dt
    finally:
        p.stop()


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    lines = program(n)
    a = ours(lines)
    b = printcore_rate(lines)
    print(f"our host:  {a:8.0f} lines/s ({n} lines)")
    if b is None:
        print("printcore: not installed (pip install --no-deps printrun)")
    else:
        print(f"printcore: {b:8.0f} lines/s")
        print(f"ratio ours/printcore: {a / b:.2f}")
