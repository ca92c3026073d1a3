"""docs/sintering.md's validation table is what the models compute now."""

from __future__ import annotations

from slicer_energy.sintering.validation import markdown, rows

from conftest import REPO, SHARED, need_shared


def _docs_table() -> str:
    lines = (REPO / "docs" / "sintering.md").read_text(encoding="utf-8").splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("| case | source |"))
    table = []
    for line in lines[i:]:
        if not line.startswith("|"):
            break
        table.append(line)
    return "\n".join(table)


def test_docs_table_is_recomputed_and_every_check_holds():
    need_shared("corpus", "stl", "iphone6_case_thing3532190.stl")
    rs = rows(SHARED)
    assert _docs_table() == markdown(rs), (
        "docs/sintering.md table is stale; regenerate: python -m slicer_energy.sintering.validation"
    )
    failed = [r.case for r in rs if not r.passed]
    assert not failed, failed
