"""The study's stated results, recomputed: reproduced or contradicted, with the numbers."""

from __future__ import annotations

from typing import Any

from .study import ScenarioResult

STUDY_FZ4_FACTOR = 60.0  # study-scenarios.md: "about a factor of 60"


def _r(results: list[ScenarioResult]) -> dict[str, ScenarioResult]:
    return {r.id: r for r in results}


def use_phase_factor(res: ScenarioResult) -> float | None:
    """Saved use-phase GWP divided by the GWP of producing and delivering the part."""
    g = res.by_stage["gwp100"]
    production = sum(v for s, v in g.items() if s != "use")
    if g["use"] >= 0 or production <= 0:
        return None
    return -g["use"] / production


def phone_case_findings(results: list[ScenarioResult]) -> list[dict[str, Any]]:
    r = _r(results)
    out: list[dict[str, Any]] = []
    order = sorted(r, key=lambda s: r[s].totals["gwp100"])
    out.append(
        {
            "claim": "ranking of GWP across H1-H5",
            "study": "home printing (H5) of the same order as mass production (H1, H2); "
            "better only with bio-based PLA, recycling and longer use; "
            "laser sintering (H3, H4) worst",
            "ours": {
                "order_low_to_high": order,
                "gwp100_kg_co2eq": {s: r[s].totals["gwp100"] for s in order},
            },
        }
    )
    h5a, h1, h2 = (r[s].totals["gwp100"] for s in ("H5-A", "H1", "H2"))
    same_order = 0.1 < h5a / min(h1, h2) < 10
    better_without_recycling = h5a < min(h1, h2)
    out[-1]["verdict"] = (
        "partly reproduced"
        if same_order and better_without_recycling
        else "reproduced"
        if same_order
        else "contradicted"
    )
    out[-1]["why"] = (
        f"H5-A/H1 = {h5a / h1:.2f}, H5-A/H2 = {h5a / h2:.2f}: same order of magnitude"
        + (
            "; but H5-A is already below H1 and H2 without recycling or longer life here "
            "(PC granulate 4.2 kg CO2e/kg vs PLA 0.62 incl. biogenic uptake, air freight in H1)"
            if better_without_recycling
            else ""
        )
    )
    sls = {s: r[s].energy_kwh for s in r if s.startswith(("H3", "H4"))}
    fdm = {s: r[s].energy_kwh for s in r if s.startswith("H5")}
    out.append(
        {
            "claim": "laser sintering needs more processing energy per case than home FDM",
            "study": "SLS in a professional machine needs significantly more energy "
            "than home printing",
            "ours": {
                "sls_kwh_per_case": sls,
                "fdm_kwh_per_case": fdm,
                "basis": {s: [st["basis"] for st in r[s].steps] for s in (*sls, *fdm)},
            },
            "verdict": "reproduced" if min(sls.values()) > max(fdm.values()) else "contradicted",
            "why": f"factor {min(sls.values()) / max(fdm.values()):.1f} at full builds",
        }
    )
    air = r["H1"].by_activity_gwp.get("transport:air_freight", 0.0)
    share = air / r["H1"].totals["gwp100"]
    out.append(
        {
            "claim": "air freight matters in H1 (transport otherwise small)",
            "study": "transport and disposal matter little, except air freight in H1",
            "ours": {
                "h1_air_freight_share_of_gwp": share,
                "transport_share_of_gwp": {
                    s: r[s].by_stage["gwp100"]["transport"] / r[s].totals["gwp100"] for s in r
                },
            },
            "verdict": "reproduced"
            if share > 0.2
            and all(
                r[s].by_stage["gwp100"]["transport"] / r[s].totals["gwp100"] < 0.1
                for s in r
                if s != "H1"
            )
            else "contradicted",
            "why": f"air freight is {share:.0%} of H1's GWP (0.025 kg x 9,000 km x 0.531 kg/tkm)",
        }
    )
    return out


def aircraft_findings(results: list[ScenarioResult]) -> list[dict[str, Any]]:
    r = _r(results)
    out: list[dict[str, Any]] = []
    f = {s: use_phase_factor(r[s]) for s in r if s.startswith("FZ4")}
    vs_fz1 = {s: -r[s].by_stage["gwp100"]["use"] / r["FZ1"].totals["gwp100"] for s in f}
    within = all(v is not None and 1 / 1.5 <= v / STUDY_FZ4_FACTOR <= 1.5 for v in f.values())
    prod = {s: r[s].totals["gwp100"] - r[s].by_stage["gwp100"]["use"] for s in f}
    out.append(
        {
            "claim": "FZ4 use-phase factor ~60",
            "study": "kerosene saved outweighs production about 60 times",
            "ours": {
                "fz4_use_phase_factor": f,
                "saved_over_fz1_total": vs_fz1,
                "production_gwp_kg_co2eq": prod,
            },
            "verdict": "reproduced (within x1.5)" if within else "contradicted (outside x1.5)",
            "why": "1,500 kg kerosene x 3.16 kg CO2/kg = 4,740 kg CO2 saved; "
            "a factor of 60 implies "
            f"a production footprint of {4740 / STUDY_FZ4_FACTOR:.0f} kg CO2e, while the data "
            f"here give {min(prod.values()):.0f}-{max(prod.values()):.0f} kg (primary Al 15.1 "
            "kg CO2e/kg, MLS 64-103 kWh/kg on the CN-South grid); the study's Atkins MLS "
            "energies and its aluminium data are not public, so the gap cannot be traced further",
        }
    )
    g1 = r["FZ1"].by_stage["gwp100"]
    out.append(
        {
            "claim": "FZ1 dominated by aluminium production and air transport",
            "study": "FZ1 is dominated by air transport and aluminium production; "
            "machining matters little",
            "ours": {
                "fz1_stage_shares": {s: v / r["FZ1"].totals["gwp100"] for s, v in g1.items()},
                "air_freight_share": r["FZ1"].by_activity_gwp.get("transport:air_freight", 0.0)
                / r["FZ1"].totals["gwp100"],
            },
            "verdict": "reproduced" if g1["material"] == max(g1.values()) else "contradicted",
            "why": "material is the largest stage; machining energy is marked missing",
        }
    )
    mls = [s for s in r if s.startswith(("FZ2", "FZ3"))]
    largest = {s: max(r[s].by_stage["gwp100"], key=r[s].by_stage["gwp100"].get) for s in mls}
    out.append(
        {
            "claim": "on-site MLS processing is the largest contributor of FZ2/FZ3",
            "study": "for the MLS variants, on-site processing is the largest contributor",
            "ours": {"largest_stage": largest},
            "verdict": "reproduced"
            if all(v == "processing" for v in largest.values())
            else "contradicted",
            "why": "processing vs powder (material) stage GWP",
        }
    )
    return out
