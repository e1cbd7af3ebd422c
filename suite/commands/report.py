"""``ddspbench report``: leaderboards, Pareto fronts, KD vs others and the HTML listening page."""

from __future__ import annotations

import argparse

from ddspbench.suite.bounds import Bound

HELP = "report on results directories: leaderboard (md/csv/json), Pareto fronts, KD vs others, HTML listening page"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", nargs="+", required=True, metavar="DIR", help="results directories (records.jsonl)")
    p.add_argument("--out", default=None, metavar="DIR", help="report folder to write (default: <first --results>/report)")
    p.add_argument("--format", default="md,html,csv,json", help="comma-separated: md, html, csv, json")
    p.add_argument("--metric", default="mss", help="ranking / quality metric (default mss)")
    p.add_argument("--objectives", default=None,
                   help="2 or 3 metrics for the Pareto fronts (default: the sweep's objectives, else METRIC,RTF-METRIC)")
    p.add_argument("--families", default=None, help="only these families (comma-separated)")
    p.add_argument("--family", dest="families", default=None, help=argparse.SUPPRESS)  # old spelling, kept working
    p.add_argument("--instruments", default=None, help="only these instruments (comma-separated)")
    p.add_argument("--instrument", dest="instruments", default=None, help=argparse.SUPPRESS)  # old spelling, kept working
    p.add_argument("--max-rtf", type=Bound(float, 0.0, 1e6, low_open=True), default=None, help="only candidates with RTF-METRIC <= this")
    p.add_argument("--rtf-metric", default="rtf_stream_64", help="the RTF column --max-rtf applies to")
    p.add_argument("--max-params", type=Bound(float, 0.0, 1e13, low_open=True), default=None, help="only candidates with at most this many parameters")
    p.add_argument("--max-mb", type=Bound(float, 0.0, 1e7, low_open=True), default=None, help="only candidates with param_bytes <= this many MB (10^6 B)")
    p.add_argument("--budget-metric", default=None, help="what KD vs others matches budgets on (default param_bytes)")
    p.add_argument("--clips", type=Bound(int, 0, 1000), default=3, help="audio clips per listening candidate (default 3)")
    p.add_argument("--top", type=Bound(int, 1, 100_000), default=20, help="rows printed in the terminal (default 20)")
    p.add_argument("--allow-mixed-hardware", action="store_true",
                   help="combine rows measured on different machines/threads/devices or metric definitions")
    p.add_argument("--json", action="store_true", help="print the written files and the ranked rows as JSON")


def study_objectives(results: list[str], quality: str) -> list[str] | None:
    """The objectives the sweeps of ``results`` optimised (their ``config.<study>.yaml``), ordered by
    :func:`pareto_objectives`; None when no directory has one or the directories disagree, so that a
    plain ``ddspbench report`` draws the same Pareto front as the sweep that wrote the records."""
    from pathlib import Path

    import yaml

    from ddspbench.reports.pareto import pareto_objectives

    found: set[tuple[str, ...]] = set()
    for d in results:
        for path in sorted(Path(d).glob("config.*.yaml")):
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue
            objs = data.get("objectives") if isinstance(data, dict) else None
            if isinstance(objs, list) and objs and all(isinstance(o, str) for o in objs):
                found.add(tuple(objs))
    if len(found) != 1:
        return None
    objs = pareto_objectives(quality, list(found.pop()))
    return objs if len(objs) >= 2 else None


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from ddspbench.reports import build_report, load_results, print_leaderboard
    from ddspbench.reports.tables import filter_frame
    from ddspbench.suite.commands._options import check_out_dir, print_json
    out = check_out_dir(args.out or Path(args.results[0]) / "report")
    assert out is not None
    written = build_report(
        args.results, out, args.format, metric=args.metric,
        objectives=args.objectives or study_objectives(args.results, args.metric),
        family=args.families, instrument=args.instruments, max_rtf=args.max_rtf, rtf_metric=args.rtf_metric,
        max_params=args.max_params, max_mb=args.max_mb, allow_mixed_hardware=args.allow_mixed_hardware,
        budget_metric=args.budget_metric, n_clips=args.clips,
    )
    console = Console()
    df = filter_frame(load_results(args.results, allow_mixed_hardware=args.allow_mixed_hardware),
                      family=args.families, instrument=args.instruments, max_rtf=args.max_rtf,
                      rtf_metric=args.rtf_metric, max_params=args.max_params, max_mb=args.max_mb)
    if args.json:
        rows = df.head(args.top) if args.top else df
        print_json({"out": str(out), "written": {k: str(v) for k, v in written.items()},
                    "rows": len(df), "top": rows.to_dict(orient="records")})
        return 0
    print_leaderboard(df, console=console, top=args.top, metric=args.metric)
    if "json" in written:
        from ddspbench.reports.tables import print_verdicts

        print_verdicts(written["json"], console)
    for kind, path in written.items():
        if not kind.startswith("plot:"):
            console.print(f"{kind:>5}: {path}", markup=False, highlight=False)
    return 0
