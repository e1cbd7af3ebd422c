"""Carry the HpN half of the 2026-11-27 compare run into the verdict rework (issue 20), after checking it reproduces.

The records of ``results_compare_v1`` were written before records kept their clips' identity (``clips``: clip ids
and recordings), which the run-level verdicts need to average clips within recordings. On 2026-12-04 the same
preset was started again on the same machine with best-checkpoint selection (``results_compare_reproduced/records.jsonl``: the HpN
teacher and three HpN candidates before the run was stopped for time). This script

1. checks that every reproduced record has **bit-identical** per-clip MSS values to its 2026-11-27 record (same data,
   same clips in the same order, same seeds; their best validation step was their last, so best-checkpoint
   selection changes nothing for them), and fails otherwise;
2. writes the 2026-11-27 HpN records with the reproduced run's clip identity added (nothing else changed) to
   ``results_compare/hpn/records.jsonl``;
3. lists the HpN runs whose best validation step was not their last: those records stay evaluated at the last step
   (their training reports say so), and the report's ``evaluated_at`` column shows it.

Run: ``python benchmarks/upgrade_compare_v1.py`` (no model code, no training; reads and writes JSON Lines).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ddspbench.reports.convergence import training_reports

HERE = Path(__file__).resolve().parent
OLD = HERE / "results_compare_v1" / "records.jsonl"
REPRODUCED = HERE / "results_compare_reproduced" / "records.jsonl"
OUT = HERE / "results_compare" / "hpn" / "records.jsonl"


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _last_report(mp: Any) -> dict[str, Any] | None:
    found = training_reports(mp)
    return found[-1] if found else None


def main() -> int:
    old = [r for r in _lines(OLD) if r["family"] == "hpn"]
    new = {r["candidate_id"].split("-")[0] if r["method"] == "teacher" else r["candidate_id"]: r
           for r in _lines(REPRODUCED) if r["status"] == "ok"}
    clips = None
    for r in old:
        key = "teacher" if r["method"] == "teacher" else r["candidate_id"]
        ref = new.get(key)
        if ref is None:
            continue
        if r["per_clip"]["mss"] != ref["per_clip"]["mss"]:
            print(f"error: {r['candidate_id']}: the reproduced per-clip MSS differs from 2026-11-27's", file=sys.stderr)
            return 1
        clips = clips or ref["clips"]
        print(f"reproduced bit for bit: {r['candidate_id']} ({r['method']}, seed {r['seed']})")
    if clips is None:
        print("error: no reproduced record to take the clips' identity from", file=sys.stderr)
        return 1
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as f:
        for r in old:
            if len(r["per_clip"].get("mss", [])) != len(clips["ids"]):
                print(f"error: {r['candidate_id']}: {len(r['per_clip']['mss'])} per-clip values, "
                      f"{len(clips['ids'])} clips", file=sys.stderr)
                return 1
            f.write(json.dumps({**r, "clips": clips}, sort_keys=True) + "\n")
            rep = _last_report(r["method_params"])
            if rep is not None:
                best = min(rep["curve"], key=lambda p: p[1])
                if best[0] != rep["curve"][-1][0]:
                    print(f"evaluated at the last step, best was earlier: {r['candidate_id']} ({r['method']}, seed "
                          f"{r['seed']}): best valid {best[1]:.4f} at step {best[0]}, last {rep['curve'][-1][1]:.4f}")
    print(f"wrote {len(old)} records to {OUT.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
