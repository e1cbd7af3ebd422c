"""``ddspbench list``: every registry and its entries."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "list every registry (families, sizes, compressors, datasets, embeddings, metrics, f0 trackers)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("registry", nargs="?", default=None, help="only this registry (e.g. sizes)")
    p.add_argument("--pattern", default="*", help="shell wildcard on entry names (e.g. 'hpn/*')")
    p.add_argument("--json", action="store_true", help="print JSON")


def _count_params(factory: Any) -> dict[str, int] | None:
    model = factory()
    params = list(model.parameters())
    return {
        "params": int(sum(p.numel() for p in params)),
        "params_trainable": int(sum(p.numel() for p in params if p.requires_grad)),
    }


def collect(registry: str | None = None, pattern: str = "*") -> dict[str, list[dict[str, Any]]]:
    """Registry name -> list of entries as JSON-able dicts (sizes carry their parameter counts)."""
    from ddspbench.suite.errors import UserError
    from ddspbench.suite.records import json_clean
    from ddspbench.suite.registry import ALL_REGISTRIES

    if registry is not None and registry not in ALL_REGISTRIES:
        raise UserError(f"unknown registry {registry!r}; known: {', '.join(ALL_REGISTRIES)}")
    out: dict[str, list[dict[str, Any]]] = {}
    for rname, reg in ALL_REGISTRIES.items():
        if registry is not None and rname != registry:
            continue
        rows = []
        for name in reg.list(pattern):
            e = reg.entry(name)
            row: dict[str, Any] = {"name": name, "description": e.description, **json_clean(_described(dict(e.meta)))}
            if rname == "sizes":
                row.update(_count_params(e.obj) or {})
            rows.append(row)
        out[rname] = rows
    return out


def _described(meta: Any) -> Any:
    """Registry metadata with every option declaration (:mod:`suite.bounds`: ``Bound``, ``Text``...) as the sentence
    it describes itself with (``"an integer in [1, 100000]"``), so ``list --json`` prints what each option accepts."""
    if isinstance(meta, dict):  # functions (a dataset's size estimate) are code, not something to list
        return {k: _described(v) for k, v in meta.items() if not (callable(v) and not hasattr(v, "check"))}
    describe = getattr(meta, "describe", None)
    if callable(describe):
        return describe()
    if callable(getattr(meta, "check", None)):  # a declaration without its own sentence: its docstring's first line
        return (type(meta).__doc__ or type(meta).__name__).strip().splitlines()[0].rstrip(".")
    return meta


def run(args: argparse.Namespace) -> int:
    data = collect(args.registry, args.pattern)
    if args.json:
        from ddspbench.suite.commands._options import print_json

        print_json(data, indent=2)
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for rname, rows in data.items():
        table = Table(title=f"{rname} ({len(rows)})", title_justify="left")
        table.add_column("name")
        extra = ["params", "params_trainable"] if rname == "sizes" else []
        for col in extra:
            table.add_column(col, justify="right")
        table.add_column("description")
        for row in rows:
            table.add_row(row["name"], *[f"{row.get(c, ''):,}" for c in extra], row["description"])
        console.print(table)
    return 0
