"""Brightway 2.5 export, offline in a temporary project directory, scored by bw2calc.

bw2calc is an independent LCA solver: its scores for the exported systems must equal ours
(to ~1e-6: Brightway stores amounts as 32-bit floats).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
from slicer_energy.lca.study import StudyRun
from slicer_energy.lca.brightway import export_study
import bw2data as bd, bw2calc as bc
out = {}
for study in ("phone-case", "aircraft-part"):
    run = StudyRun.create(study, energy_mode="pinned")
    exp = export_study(run, "slicer-energy-test")
    ours = {r.id: r.totals for r in run.results()}
    for sid, key in exp["functional_units"].items():
        act = bd.get_activity(key)
        for cat, method in exp["methods"].items():
            lca = bc.LCA({act: 1}, method)
            lca.lci()
            lca.lcia()
            out[f"{sid}/{cat}"] = [float(lca.score), ours[sid][cat]]
from slicer_energy.cli import main
assert main(["lca", "aircraft-part", "--energy", "pinned", "--json",
             "--brightway-project", "cli-project"]) == 0
assert "cli-project" in bd.projects
print("RESULT " + json.dumps(out))
"""


@pytest.mark.slow
def test_brightway_export_scores_match(tmp_path):
    for mod in ("bw2data", "bw2calc"):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"{mod} not installed (optional extra 'brightway')")
    (tmp_path / "bw").mkdir()
    env = dict(os.environ, BRIGHTWAY2_DIR=str(tmp_path / "bw"))
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    res = json.loads(line[len("RESULT ") :])
    assert len(res) == (9 + 7) * 4
    for key, (theirs, ours) in res.items():
        assert theirs == pytest.approx(ours, rel=1e-6, abs=1e-12), key
    assert res["FZ4-min/gwp100"][0] < 0  # the use-phase credit survives the export
    assert any((tmp_path / "bw").iterdir())  # the project lives in the temporary directory
