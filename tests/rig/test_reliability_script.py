"""``benchmarks/reliability.py`` (the table of docs/reliability.md) runs end to end: every fault
has the outcome it should have and nothing the script started is left running."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_quick_run_gives_every_expected_outcome(capsys):
    pytest.importorskip("distributed")
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import reliability

    rc = reliability.main(["--quick"])
    out = capsys.readouterr().out
    assert rc == 0, out
    rows = [ln for ln in out.splitlines() if ln.startswith("| ") and not ln.startswith("| fault")]
    assert len(rows) == len(reliability.SCENARIOS), out
    assert "0 run(s) without the expected outcome; nothing left running" in out
