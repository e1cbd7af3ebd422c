"""The README's layout section matches the code: every path it names exists, and every package and top-level
module of ``suite/`` is named in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _layout() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Layout", 1)[1]
    return section.split("\n## ", 1)[0]


def test_every_path_the_layout_names_exists() -> None:
    block = _layout().split("```", 2)[1]
    folder = ""
    missing = []
    for line in block.splitlines():
        head = line.split("  ", 1)[0] if not line.startswith(" ") else ""
        if head.endswith("/"):
            folder = head
            if not (ROOT / head).is_dir():
                missing.append(head)
        for name in re.findall(r"([\w/]+\.(?:py|md))", line):
            where = folder if not line.startswith("  ") else "suite/"
            candidates = [ROOT / where / name, ROOT / name, ROOT / folder / name]
            if not any(c.exists() for c in candidates) and not list((ROOT / folder).rglob(Path(name).name)):
                missing.append(f"{where}{name}")
    assert not missing, missing


def test_every_suite_package_and_module_is_named() -> None:
    text = _layout()
    named = set(re.findall(r"([\w]+(?:\.py|/))", text))
    have = {p.name + "/" for p in (ROOT / "suite").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    have |= {p.name for p in (ROOT / "suite").glob("*.py") if p.name != "__init__.py"}
    assert have <= named, sorted(have - named)
