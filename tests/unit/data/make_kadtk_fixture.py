"""Makes ``kadtk_fixture.json``: KAD by kadtk's own function on fixed, seeded embeddings.

Not run by the tests (they read the JSON). kadtk 1.1.0 cannot be installed beside ddspbench (it pins
Python < 3.12, torch < 2.6, numpy < 2 and pulls TensorFlow), so this script takes the wheel
(``pip download kadtk==1.1.0 --no-deps``), reads ``kadtk/kad.py`` from it and executes its two
functions ``median_pairwise_distance`` and ``calc_kernel_audio_distance`` verbatim (the module's
other imports -- model loaders, hypy_utils -- are not needed by them) with the torch at hand.

Usage::

    python tests/unit/data/make_kadtk_fixture.py path/to/kadtk-1.1.0-py3-none-any.whl
"""

from __future__ import annotations

import ast
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

CASES = [  # name, seed, n_ref, n_eval, dim, shift, scale
    ("shifted", 0, 40, 33, 12, 0.3, 1.0),
    ("scaled", 1, 25, 16, 8, 0.0, 1.5),
    ("same", 2, 30, 30, 6, 0.0, 1.0),
]


def embeddings(seed: int, n_ref: int, n_eval: int, dim: int, shift: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_ref, dim)), rng.normal(size=(n_eval, dim)) * scale + shift


def kadtk_functions(wheel: str) -> dict:
    src = zipfile.ZipFile(wheel).read("kadtk/kad.py").decode()
    tree = ast.parse(src)
    keep = [n for n in tree.body if isinstance(n, ast.FunctionDef)
            and n.name in ("median_pairwise_distance", "calc_kernel_audio_distance")]
    keep += [n for n in tree.body if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "SCALE_FACTOR" for t in n.targets)]
    ns: dict = {"torch": torch, "np": np, "Path": Path}
    exec(compile(ast.Module(body=keep, type_ignores=[]), "kadtk/kad.py", "exec"), ns)
    return ns


def main(wheel: str) -> None:
    ns = kadtk_functions(wheel)
    out = {"how": __doc__.strip().splitlines()[0] + " See make_kadtk_fixture.py.", "kadtk": Path(wheel).name,
           "torch": torch.__version__, "cases": []}
    for name, seed, n_ref, n_eval, dim, shift, scale in CASES:
        a, b = embeddings(seed, n_ref, n_eval, dim, shift, scale)
        x, y = torch.tensor(a), torch.tensor(b)
        bw = ns["median_pairwise_distance"](b)
        k32 = float(ns["calc_kernel_audio_distance"](x, y, (None, None), "cpu"))
        k64 = float(ns["calc_kernel_audio_distance"](x, y, (None, None), "cpu", precision=torch.float64))
        out["cases"].append({"name": name, "seed": seed, "n_ref": n_ref, "n_eval": n_eval, "dim": dim, "shift": shift,
                             "scale": scale, "bandwidth": bw, "kad_float32": k32, "kad_float64": k64})
    Path(__file__).with_name("kadtk_fixture.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
