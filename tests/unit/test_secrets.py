"""Storage-URL secrets never reach the terminal or a file, in any URL form; the URL can come from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddspbench.suite.cli import main
from ddspbench.suite.presets import preset_tree
from ddspbench.suite.sweep.config import config_from_dict
from ddspbench.suite.sweep.runner import save_resolved_config
from ddspbench.suite.sweep.storage import mask_secrets, mask_url

# (url, fragments of the secret that must never appear); port 1 on localhost refuses at once
FORMS = [
    ("postgresql://alice:Sx7pwA1@127.0.0.1:1/db", ["Sx7pwA1"]),
    ("postgresql://alice@127.0.0.1:1/db?password=Sx7pwB2&connect_timeout=1", ["Sx7pwB2"]),
    ("postgresql://alice:Sx7p@wC3@127.0.0.1:1/db", ["Sx7p@wC3", "wC3@"]),
    ("postgresql+psycopg2://alice:Sx7pwD4@127.0.0.1:1/db", ["Sx7pwD4"]),
    ("postgresql://alice:Sx7p%40w%2FE5@127.0.0.1:1/db", ["Sx7p%40w%2FE5", "Sx7p@w/E5", "Sx7p"]),
    ("postgresql://alice@127.0.0.1:1/db?sslmode=disable&sslpassword=Sx7pwF6", ["Sx7pwF6"]),
]


def _files_text(root: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(("url", "secrets"), FORMS, ids=[f"form{i}" for i in range(len(FORMS))])
def test_mask_url_hides_every_form(url, secrets):
    masked = mask_url(url)
    assert "***" in masked and "alice" in masked and "127.0.0.1" in masked
    for s in secrets:
        assert s not in masked
    assert mask_secrets(f"could not connect as alice with {secrets[0]}", url).count("***") == 1


@pytest.mark.parametrize(("url", "secrets"), FORMS, ids=[f"form{i}" for i in range(len(FORMS))])
@pytest.mark.parametrize("via", ["flag", "env"])
def test_no_secret_in_output_or_files(url, secrets, via, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    argv = ["sweep", "--setup-only", "--no-report", "--out", str(out)]
    if via == "flag":
        argv += ["--storage", url]
    else:
        monkeypatch.setenv("DDSPBENCH_STORAGE", url)
    code = main(argv)
    cap = capsys.readouterr()
    assert code == 2  # nothing listens there
    assert "cannot open storage" in cap.err or "driver" in cap.err
    config = save_resolved_config(config_from_dict(preset_tree("smoke")), out, url)  # what a sweep writes
    assert "***" in config.read_text()
    seen = cap.out + cap.err + _files_text(tmp_path)
    for s in secrets:
        assert s not in seen, s


def test_storage_url_from_the_environment(tmp_path, monkeypatch, capsys):
    journal = tmp_path / "elsewhere" / "shared.journal"
    monkeypatch.setenv("DDSPBENCH_STORAGE", f"journal://{journal}")
    assert main(["sweep", "--setup-only", "--no-report", "--trials", "2", "--out", str(tmp_path / "out"), "--json"]) == 0
    assert journal.is_file() and not (tmp_path / "out" / "study.journal").exists()
    import json

    assert json.loads(capsys.readouterr().out)["storage"] == f"journal://{journal}"
