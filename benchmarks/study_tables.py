"""Write the LCA, claim and sintering tables of docs/lca.md and docs/sintering.md from what
the models compute now.

Each table sits in one of those pages between ``<!-- study_tables:NAME -->`` and
``<!-- /study_tables:NAME -->``; this script replaces the text between them. ``--check``
changes nothing and exits 1 naming every stale table (tests/lca/test_study_tables.py runs it).
Tables that need ``../shared`` (the sintering validation and envelope, which read corpus
parts) are left as they are when it is absent.

    python benchmarks/study_tables.py [--check] [--only NAME ...] [--shared ../shared]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PAGES = (REPO / "docs" / "lca.md", REPO / "docs" / "sintering.md")
sys.path.insert(0, str(REPO / "benchmarks"))


def _iv(h: dict[str, float], fmt: str) -> str:
    return f"{h['median']:{fmt}} ({h['p05']:{fmt}}–{h['p95']:{fmt}})"


def claim_table(doc: dict[str, Any]) -> str:
    rows = [
        ("SLS kWh per phone case (H4, EOSINT P 390)", "sls_kwh_per_case", ".3f"),
        ("home FDM kWh per phone case (H5, Prusa MK3S)", "fdm_kwh_per_case", ".3f"),
        ("SLS / FDM per case", "sls_to_fdm_factor", ".2f"),
        ("utilisation where SLS = FDM (× a full build)", "flip_utilisation", ".2f"),
        ("FZ4 use-phase factor, MLS Min", "fz4_use_phase_factor", ".0f"),
        ("FZ4 use-phase factor, MLS Max", "fz4_use_phase_factor_max_energy", ".0f"),
    ]
    lines = ["| headline | nominal | median (90 % interval) |", "| --- | --- | --- |"]
    lines += [f"| {t} | {doc[k]['nominal']:{f}} | {_iv(doc[k], f)} |" for t, k, f in rows]
    return "\n".join(lines)


def verdict_table(doc: dict[str, Any]) -> str:
    lines = ["| study says | test | here: median (90 % interval) | verdict |",
             "| --- | --- | --- | --- |"]  # fmt: skip
    for v in doc["verdicts"]:
        lines.append(f"| {v['study']} | {v['criterion']} | {v['why']} | {v['verdict']} |")
    return "\n".join(lines)


def lca_table(doc: dict[str, Any], study: str) -> str:
    """GWP100 by stage at the nominal inputs, and the total's median and 90 % interval."""
    from slicer_energy.lca.study import StudyRun
    from slicer_energy.lca.system import STAGES

    stats = doc["headlines"][study]
    lines = [
        "| scenario | " + " | ".join(s.replace("_", " ") for s in STAGES)
        + " | total | median (90 % interval) | processing kWh |",
        "| --- " * (len(STAGES) + 4) + "|",
    ]  # fmt: skip
    for r in StudyRun.create(study).results():
        g = r.by_stage["gwp100"]
        lines.append(
            f"| {r.id} | " + " | ".join(f"{g[s]:.3g}" for s in STAGES)
            + f" | {r.totals['gwp100']:.3g} | {_iv(stats['gwp100_' + r.id], '.3g')} "
            f"| {r.energy_kwh:.3g} |"
        )  # fmt: skip
    return "\n".join(lines)


def tables(shared: Path, only: set[str] | None) -> dict[str, Callable[[], str]]:
    """Every table by marker name; those needing ../shared only when it is there."""
    doc: dict[str, Any] = {}

    def claim_doc() -> dict[str, Any]:
        if not doc:
            from slicer_energy.commands.claim import compute

            doc.update(compute())
        return doc

    out: dict[str, Callable[[], str]] = {
        "claim": lambda: claim_table(claim_doc()),
        "verdicts": lambda: verdict_table(claim_doc()),
        "lca-phone-case": lambda: lca_table(claim_doc(), "phone-case"),
        "lca-aircraft-part": lambda: lca_table(claim_doc(), "aircraft-part"),
    }
    if (shared / "corpus" / "stl").is_dir():
        from sintering_envelope import table as envelope

        from slicer_energy.sintering.validation import markdown, rows

        out["sintering-validation"] = lambda: markdown(rows(shared))
        out["sintering-envelope"] = lambda: envelope(shared)
    return {k: f for k, f in out.items() if only is None or k in only}


def _pattern(name: str) -> re.Pattern[str]:
    n = re.escape(name)
    return re.compile(rf"(<!-- study_tables:{n} -->\n)(.*?)(<!-- /study_tables:{n} -->)", re.DOTALL)


def update(text: str, name: str, body: str) -> str:
    """``text`` with the table ``name`` replaced by ``body``."""
    pat = _pattern(name)
    return pat.sub(lambda m: m.group(1) + body.rstrip("\n") + "\n" + m.group(3), text, count=1)


def page_of(texts: dict[Path, str], name: str) -> Path:
    """The page holding the markers of table ``name`` (error if none does)."""
    for page, text in texts.items():
        if _pattern(name).search(text):
            return page
    pages = ", ".join(str(p.relative_to(REPO)) for p in texts)
    raise SystemExit(f"no <!-- study_tables:{name} --> ... markers in {pages}")


def current(text: str, name: str) -> str | None:
    m = _pattern(name).search(text)
    return m.group(2) if m else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a table is stale")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="these tables only")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    args = ap.parse_args(argv)
    texts = {p: p.read_text(encoding="utf-8") for p in PAGES}
    new = dict(texts)
    for name, make in tables(args.shared, set(args.only) if args.only else None).items():
        page = page_of(new, name)
        new[page] = update(new[page], name, make())
    if args.check:
        stale = [
            n
            for n in tables(args.shared, None)
            if current(new[page_of(new, n)], n) != current(texts[page_of(texts, n)], n)
        ]
        if stale:
            print("stale tables: " + ", ".join(stale)
                  + "; regenerate with: python benchmarks/study_tables.py")  # fmt: skip
            return 1
        return 0
    for page, text in new.items():
        if text != texts[page]:
            page.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
