from __future__ import annotations

import json

import pytest

from ddspbench.suite.cli import main
from ddspbench.suite.registry import DuplicateNameError, Registry, UnknownNameError


def test_register_forms_and_lookup():
    reg: Registry[object] = Registry("thing")

    @reg.register
    def alpha():
        """Alpha does a."""

    @reg.register("beta", description="b", cost=2)
    def _b():
        pass

    reg.register("gamma", obj=42)
    assert reg.get("alpha") is alpha
    assert reg.get("gamma") == 42
    assert reg.entry("alpha").description == "Alpha does a."
    assert reg.entry("beta").meta == {"cost": 2}
    assert reg.list() == ["alpha", "beta", "gamma"]
    assert reg.list("*ta") == ["beta"]
    assert "beta" in reg and "delta" not in reg
    assert len(reg) == 3


def test_duplicate_raises():
    reg: Registry[int] = Registry("thing")
    reg.register("x", obj=1)
    with pytest.raises(DuplicateNameError):
        reg.register("x", obj=2)
    assert reg.get("x") == 1


def test_unknown_lists_known_names():
    reg: Registry[int] = Registry("widget")
    reg.register("one", obj=1)
    reg.register("two", obj=2)
    with pytest.raises(UnknownNameError) as exc:
        reg.get("three")
    msg = str(exc.value)
    assert "three" in msg and "one" in msg and "two" in msg and "widget" in msg


def test_expand_wildcards_and_csv():
    reg: Registry[int] = Registry("size")
    for n in ["hpn/full", "hpn/reduced", "ddx7/full"]:
        reg.register(n, obj=0)
    assert reg.expand("hpn/*") == ["hpn/full", "hpn/reduced"]
    assert reg.expand("ddx7/full, hpn/*") == ["ddx7/full", "hpn/full", "hpn/reduced"]
    with pytest.raises(UnknownNameError):
        reg.expand("wt/*")


def test_cli_list_json(capsys):
    assert main(["list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ["families", "sizes", "compressors", "datasets", "embeddings", "metrics", "f0_trackers"]:
        assert key in data
    names = {row["name"] for row in data["metrics"]}
    assert {"mss", "fad", "rtf_offline", "rtf_stream_64", "peak_mem_bytes"} <= names
    # a dataset's option declarations print as what they accept (they are objects in the registry)
    synthetic = next(row for row in data["datasets"] if row["name"] == "synthetic")
    assert synthetic["options"]["recordings"] == "an integer in [1, 100000]" and "estimate" not in synthetic


def test_cli_unknown_registry_is_one_line_exit_2(capsys):
    assert main(["list", "nosuch"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
