"""The study's stated results, recomputed over the uncertainty: a verdict with the numbers.

Each statement is a test on one or more *metrics* (a number per Monte Carlo draw, e.g. the
FZ4 use-phase factor). A metric's 90 % interval is its 5-95 % quantiles over the draws
(:func:`study_stats`). A statement is ``reproduced`` when it holds over the whole interval,
``contradicted`` when it fails over the whole interval, ``undetermined`` otherwise
(:func:`verdict`); a statement with several conditions (all must hold) is reproduced when
every one is, contradicted when any one is (:func:`all_of`). Explanations are built from the
numbers of the run, never from figures typed here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .replay import DEFAULT_DRAWS
from .study import ScenarioResult, StudyRun, sample_results

STUDY_FZ4_FACTOR = 60.0  # study-scenarios.md: "about a factor of 60"
# "About a factor of 60" read as 40-90: a figure rounded from the study's bar charts would
# have been stated as about 30 or 100 outside that (our reading; the study gives no range).
FZ4_TOLERANCE = 1.5
# "Significantly higher" read as at least 1.5 times (our reading; the study gives no number).
SIGNIFICANT_FACTOR = 1.5
REPRODUCED, CONTRADICTED, UNDETERMINED = "reproduced", "contradicted", "undetermined"

Stats = dict[str, dict[str, float]]  # metric -> {"median", "p05", "p95", "nominal"}
Metrics = Callable[[Mapping[str, float], list[ScenarioResult]], dict[str, float]]


def verdict(p05: float, p95: float, lo: float = -math.inf, hi: float = math.inf) -> str:
    """Does ``lo <= x <= hi`` hold over the whole interval [p05, p95], over none of it, or
    over part of it?"""
    if lo <= p05 and p95 <= hi:
        return REPRODUCED
    if p95 < lo or p05 > hi:
        return CONTRADICTED
    return UNDETERMINED


def all_of(verdicts: list[str]) -> str:
    """Several conditions that must all hold."""
    if all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    return CONTRADICTED if CONTRADICTED in verdicts else UNDETERMINED


def study_stats(
    run: StudyRun, metrics: Metrics, iterations: int = DEFAULT_DRAWS, seed: int = 42
) -> Stats:
    """Median, 5 and 95 % quantiles over seeded draws, and the nominal value, per metric."""
    nominal = metrics({}, run.results())
    rows = [metrics(ov, res) for ov, res in sample_results(run, iterations, seed)]
    out: Stats = {}
    for k, v in nominal.items():
        x = np.array([r[k] for r in rows], dtype=float)
        out[k] = {
            "median": float(np.median(x)),
            "p05": float(np.quantile(x, 0.05)),
            "p95": float(np.quantile(x, 0.95)),
            "nominal": float(v),
        }
    return out


def _share(r: ScenarioResult, stage: str) -> float:
    return r.by_stage["gwp100"][stage] / r.totals["gwp100"]


def _lead(r: ScenarioResult, stage: str) -> float:
    """Share of ``stage`` in GWP minus the largest other stage's share (> 0: it leads)."""
    g = r.by_stage["gwp100"]
    return (g[stage] - max(v for s, v in g.items() if s != stage)) / r.totals["gwp100"]


def use_phase_factor(res: ScenarioResult) -> float:
    """Saved use-phase GWP divided by the GWP of producing and delivering the part."""
    g = res.by_stage["gwp100"]
    return -g["use"] / sum(v for s, v in g.items() if s != "use")


def phone_case_metrics(ov: Mapping[str, float], results: list[ScenarioResult]) -> dict[str, float]:
    r = {x.id: x for x in results}
    gwp = {s: x.totals["gwp100"] for s, x in r.items()}
    sls, fdm = r["H4-30"].energy_kwh, r["H5-A"].energy_kwh
    return {
        "sls_kwh_per_case": sls,
        "fdm_kwh_per_case": fdm,
        "sls_to_fdm_factor": sls / fdm,
        "h5a_over_h1": gwp["H5-A"] / gwp["H1"],
        "h5a_over_h2": gwp["H5-A"] / gwp["H2"],
        "h1_air_freight_share": r["H1"].by_activity_gwp.get("transport:air_freight", 0.0)
        / gwp["H1"],
        "max_transport_share_besides_h1": max(
            _share(x, "transport") for s, x in r.items() if s != "H1"
        ),  # fmt: skip
        **{f"gwp100_{s}": v for s, v in gwp.items()},
    }


def aircraft_metrics(ov: Mapping[str, float], results: list[ScenarioResult]) -> dict[str, float]:
    r = {x.id: x for x in results}
    out: dict[str, float] = {}
    for v in ("min", "max"):
        x = r[f"FZ4-{v}"]
        out[f"fz4_use_phase_factor_{v}"] = use_phase_factor(x)
        out[f"fz4_production_gwp_{v}"] = x.totals["gwp100"] - x.by_stage["gwp100"]["use"]
        out[f"fz4_mls_kwh_per_kg_{v}"] = x.energy_kwh / x.part["part_kg"]
    out["fz4_saved_gwp"] = -r["FZ4-min"].by_stage["gwp100"]["use"]
    fz1 = r["FZ1"]
    out["fz1_material_share"] = _share(fz1, "material")
    out["fz1_air_freight_share"] = (
        fz1.by_activity_gwp.get("transport:air_freight", 0.0) / fz1.totals["gwp100"]
    )
    out["fz1_material_lead"] = _lead(fz1, "material")
    for s in r:
        if s.startswith(("FZ2", "FZ3")):
            out[f"{s}_processing_lead"] = _lead(r[s], "processing")
    out.update({f"gwp100_{s}": x.totals["gwp100"] for s, x in r.items()})
    return out


def _iv(st: Stats, k: str, fmt: str = ".2f") -> str:
    """'median (p05-p95)' of a metric, for explanations."""
    m = st[k]
    return f"{m['median']:{fmt}} ({m['p05']:{fmt}}-{m['p95']:{fmt}})"


def _finding(
    statement: str, study: str, criterion: str, result: str, numbers: list[str], st: Stats,
    why: str,
) -> dict[str, Any]:  # fmt: skip
    return {
        "statement": statement,
        "study": study,
        "criterion": criterion,
        "verdict": result,
        "numbers": {k: st[k] for k in numbers},
        "why": why,
    }


def phone_case_findings(st: Stats) -> list[dict[str, Any]]:
    f = st["sls_to_fdm_factor"]
    h1, h2 = st["h5a_over_h1"], st["h5a_over_h2"]
    air, other = st["h1_air_freight_share"], st["max_transport_share_besides_h1"]
    order = all_of([verdict(h1["p05"], h1["p95"], 0.1, 10), verdict(h2["p05"], h2["p95"], 0.1, 10)])
    only_with = all_of([verdict(h1["p05"], h1["p95"], 1.0), verdict(h2["p05"], h2["p95"], 1.0)])
    return [
        _finding(
            "laser sintering needs significantly more processing energy per case than home FDM",
            "SLS in a professional machine needs significantly more energy than home printing",
            f"SLS (H4-30) / FDM (H5-A) kWh per case >= {SIGNIFICANT_FACTOR}",
            verdict(f["p05"], f["p95"], SIGNIFICANT_FACTOR),
            ["sls_kwh_per_case", "fdm_kwh_per_case", "sls_to_fdm_factor"],
            st,
            f"SLS {_iv(st, 'sls_kwh_per_case', '.3f')} vs FDM {_iv(st, 'fdm_kwh_per_case', '.3f')}"
            f" kWh per case: factor {_iv(st, 'sls_to_fdm_factor')}",
        ),
        _finding(
            "home printing is of the same order of magnitude as mass production",
            "home printing (H5) of the same order as mass production (H1, H2)",
            "GWP of H5-A / H1 and H5-A / H2 within 0.1-10",
            order,
            ["h5a_over_h1", "h5a_over_h2"],
            st,
            f"H5-A/H1 = {_iv(st, 'h5a_over_h1')}, H5-A/H2 = {_iv(st, 'h5a_over_h2')}",
        ),
        _finding(
            "home printing is better than mass production only with recycling and longer use",
            "better only with bio-based PLA, recycling and longer use",
            "without recycling or longer life (H5-A), GWP not below H1 and H2 (ratios >= 1)",
            only_with,
            ["h5a_over_h1", "h5a_over_h2"],
            st,
            f"H5-A/H1 = {_iv(st, 'h5a_over_h1')}, H5-A/H2 = {_iv(st, 'h5a_over_h2')}",
        ),
        _finding(
            "air freight matters in H1, transport otherwise small",
            "transport and disposal matter little, except air freight in H1",
            "air freight > 20 % of H1's GWP and transport < 10 % of every other scenario's",
            all_of(
                [verdict(air["p05"], air["p95"], 0.2), verdict(other["p05"], other["p95"], hi=0.1)]
            ),  # fmt: skip
            ["h1_air_freight_share", "max_transport_share_besides_h1"],
            st,
            f"air freight {_iv(st, 'h1_air_freight_share')} of H1's GWP; transport at most "
            f"{_iv(st, 'max_transport_share_besides_h1')} elsewhere",
        ),
    ]


def aircraft_findings(st: Stats) -> list[dict[str, Any]]:
    lo, hi = STUDY_FZ4_FACTOR / FZ4_TOLERANCE, STUDY_FZ4_FACTOR * FZ4_TOLERANCE
    fmin, fmax = st["fz4_use_phase_factor_min"], st["fz4_use_phase_factor_max"]
    # The study's Min/Max variants bracket its own uncertainty: one interval over both
    pooled = (min(fmin["p05"], fmax["p05"]), max(fmin["p95"], fmax["p95"]))
    saved = st["fz4_saved_gwp"]["median"]
    leads = sorted(k for k in st if k.endswith("_processing_lead"))
    return [
        _finding(
            "FZ4: kerosene saved outweighs production about 60 times",
            "counting the use phase, the kerosene saved outweighs production about 60 times",
            f"use-phase factor of FZ4 (Min and Max pooled) within {lo:.0f}-{hi:.0f} "
            f"(x{FZ4_TOLERANCE} of {STUDY_FZ4_FACTOR:.0f})",
            verdict(*pooled, lo, hi),
            [
                "fz4_use_phase_factor_min",
                "fz4_use_phase_factor_max",
                "fz4_production_gwp_min",
                "fz4_production_gwp_max",
                "fz4_mls_kwh_per_kg_min",
                "fz4_mls_kwh_per_kg_max",
                "fz4_saved_gwp",
            ],
            st,
            f"factor {_iv(st, 'fz4_use_phase_factor_min', '.0f')} (Min), "
            f"{_iv(st, 'fz4_use_phase_factor_max', '.0f')} (Max): {saved:.0f} kg CO2 saved "
            f"over production of {_iv(st, 'fz4_production_gwp_min', '.0f')} / "
            f"{_iv(st, 'fz4_production_gwp_max', '.0f')} kg CO2e with MLS at "
            f"{_iv(st, 'fz4_mls_kwh_per_kg_min', '.0f')} / "
            f"{_iv(st, 'fz4_mls_kwh_per_kg_max', '.0f')} kWh/kg; a factor of 60 implies "
            f"{saved / STUDY_FZ4_FACTOR:.0f} kg CO2e",
        ),  # fmt: skip
        _finding(
            "FZ1 is dominated by aluminium production",
            "FZ1 is dominated by air transport and aluminium production; machining matters little",
            "material is FZ1's largest stage (material share minus the next stage's > 0)",
            verdict(st["fz1_material_lead"]["p05"], st["fz1_material_lead"]["p95"], 0.0),
            ["fz1_material_share", "fz1_air_freight_share", "fz1_material_lead"],
            st,
            f"material {_iv(st, 'fz1_material_share')} of FZ1's GWP, air freight "
            f"{_iv(st, 'fz1_air_freight_share')}",
        ),
        _finding(
            "on-site MLS processing is the largest contributor of FZ2/FZ3",
            "for the MLS variants, on-site processing is the largest contributor",
            "processing is the largest stage of every FZ2/FZ3 variant",
            all_of([verdict(st[k]["p05"], st[k]["p95"], 0.0) for k in leads]),
            leads,
            st,
            "processing share minus the next stage's: "
            + ", ".join(f"{k.split('_')[0]} {_iv(st, k)}" for k in leads),
        ),
    ]


FINDINGS: dict[str, tuple[Metrics, Callable[[Stats], list[dict[str, Any]]]]] = {
    "phone-case": (phone_case_metrics, phone_case_findings),
    "aircraft-part": (aircraft_metrics, aircraft_findings),
}
