"""Regenerate lca/background/uslci.csv from the USLCI openLCA 1.5 JSON-LD zip.

Source: ../shared/data/uslci/uslci_olca1_5_0_json_ld.zip, the folder
downloads/uslci_olca1_5_0_json_ld/ of FLCAC-admin/uslci-content at commit
91824482b335d7db1b232d18dcc259301c4e42c9 (see that folder's README.md). Needs bw2io installed
(its copy of CML-IA v4.8). Prints the cut-offs of each supply chain.

    python scripts/build_lca_background.py [--zip PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from slicer_energy.lca.uslci_build import build_table, link_report

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ZIP = ROOT.parent / "shared" / "data" / "uslci" / "uslci_olca1_5_0_json_ld.zip"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zip", type=Path, default=DEFAULT_ZIP)
    ap.add_argument("--out", type=Path, default=ROOT / "lca" / "background" / "uslci.csv")
    args = ap.parse_args()
    args.out.write_text(build_table(args.zip), encoding="utf-8")
    print(link_report(args.zip))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
