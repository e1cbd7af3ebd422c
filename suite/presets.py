"""Named sweep presets: ``smoke`` (minutes on 2 CPU cores), ``quick`` (about an hour on a CPU), ``paper`` (the paper's grid, GPU).

A preset is a partial :class:`~suite.sweep.config.SweepConfig` tree; a YAML sweep file and the
command-line flags override it. Every preset runs the same code path: the smoke preset only makes
the data, the step counts and the teachers' width smaller, and every record and report it produces
carries ``preset: smoke`` so nobody mistakes its numbers for real results.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from ddspbench.suite.errors import UserError

__all__ = ["Preset", "PRESETS", "PAPER_INSTRUMENT_CONFIG", "COMPARE_INSTRUMENTS", "preset_tree"]


@dataclass(frozen=True)
class Preset:
    """A named starting point for a sweep."""

    name: str
    description: str
    tree: dict[str, Any]


_SMOKE = Preset(
    name="smoke",
    description=(
        "generated data (3 timbres, 30 clips cropped to 1 s), reduced-width teachers, tens of steps: checks that the "
        "machinery works end to end in minutes on 2 CPU cores; its numbers say nothing about quality"
    ),
    tree={
        "preset": "smoke",
        "study": "smoke",
        "trials": 9,
        "sampler": "tpe",  # budget-sized TPE (suite/sweep/sampler.py; benchmarks/results_sampler.md)
        "threads": 1,
        "objectives": ["mss", "rtf_stream_64", "param_bytes"],
        "data": {
            "dataset": "synthetic",
            "options": {"recordings": 5, "clips_per_recording": 2},  # 3 timbres x 5 phrases x 2 clips
            "frames": 250,
            "max_train": 18,
            "max_valid": 3,
            "max_test": 6,
        },
        # Full-size HpN costs seconds per step on 2 cores: the smoke teachers are narrower, built by the
        # same constructor the full size uses (REFERENCE §2 widths otherwise).
        "teacher": {"steps": 120, "batch_size": 4, "lr": 2e-3, "size": "full",
                    "widths": {"hpn": {"hidden": 64}, "wavetable": {"hidden": 64}}},
        "student": {"steps": 40, "batch_size": 4, "lr": 2e-3},
        "space": {
            # The covering set alternates families in this order (scratch/prune/quantize on HpN, KD
            # control and the chain on DDX7), then adds scratch and kd_audio on the other family.
            "families": ["hpn", "ddx7"],
            "methods": ["scratch", "kd_audio", "prune", "kd_control", "quantize", "prune+quantize"],
            "sizes": ["reduced"],
            "params": {
                "prune": {"finetune_steps": {"choices": [0, 20]}},
                "quantize": {"method": {"choices": ["int8", "bf16"]}},
            },
        },
        "evaluation": {
            "metrics": ["mss", "mss_teacher", "fad", "rtf", "stream", "memory", "size"],
            "embedding": "logmel",
            "stream_buffers": [64, 256],
            "n_audio_examples": 2,
            "threads": 1,
            "speed_backend": "native",  # what a deployment runs; quantized candidates included
        },
    },
)

_QUICK = Preset(
    name="quick",
    description=(
        "soundfont-rendered violin/flute/trumpet (or --data-path), 2 s crops, hundreds of steps, "
        "width-64 HpN/Wavetable teachers; planned for about an hour on a CPU (estimate from per-step CPU time)"
    ),
    tree={
        "preset": "quick",
        "study": "quick",
        "trials": 12,
        "sampler": "tpe",
        "threads": 1,
        "data": {"dataset": "soundfont", "options": {}, "frames": 500, "max_train": 64, "max_valid": 8, "max_test": 8},
        "teacher": {"steps": 400, "batch_size": 4, "lr": 1e-3, "size": "full",
                    "widths": {"hpn": {"hidden": 64}, "wavetable": {"hidden": 64}}},
        "student": {"steps": 150, "batch_size": 4, "lr": 1e-3},
        "space": {
            "families": ["hpn", "wavetable", "ddx7"],
            "methods": ["scratch", "kd_audio", "kd_control", "prune", "quantize", "prune+quantize"],
            "sizes": ["reduced", "hidden=32"],
            "params": {"prune": {"finetune_steps": {"choices": [0, 100]}}},
        },
        "evaluation": {"embedding": "logmel", "stream_buffers": [64, 256, 512], "n_audio_examples": 4,
                       "speed_backend": "native"},
    },
)

PAPER_INSTRUMENT_CONFIG = "suite/configs/paper_instrument.yaml"

_PAPER = Preset(
    name="paper",
    description=(
        "the reference paper's grid (Giudici et al., JAES 2025): per family (HpN, Wavetable, DDX7) the full teacher, the reduced "
        "student from scratch, KD on audio (w_target 0.5, w_kd 0.5) and KD on controls (w_target 0.5, w_kd 1.0), at "
        "16 kHz, 4 s clips, 250 frames/s, batch 16, 120k steps, AdamW 1e-3 decayed 0.98 every 10k steps: 3 teachers "
        "+ 9 students = 12 trainings of 120k steps. One instrument per run: --data-path <URMP folder> (AuSep_* stems) "
        f"with data.options.instruments set ({PAPER_INSTRUMENT_CONFIG}), else soundfont-rendered clips; for a GPU "
        "(--device cuda): at most about 19 h on one H200 by arithmetic on its measured training steps, data feeding and "
        "evaluation not counted (benchmarks/results_gpu.md)"
    ),
    tree={
        "preset": "paper",
        "study": "paper",
        # families x methods: the covering set enqueues every (family, method) pair, so the sampler never
        # chooses anything and the 9 trials are exactly the grid.
        "trials": 9,
        "sampler": "tpe",
        "device": "cuda",
        "data": {"dataset": "soundfont", "options": {}, "frames": None},
        "teacher": {"steps": 120_000, "batch_size": 16, "lr": 1e-3, "size": "full", "widths": {}},
        "student": {"steps": 120_000, "batch_size": 16, "lr": 1e-3},
        "space": {
            "families": ["hpn", "wavetable", "ddx7"],
            "methods": ["scratch", "kd_audio", "kd_control"],
            "sizes": ["reduced"],
            "params": {  # the paper's weights, fixed (one choice each)
                "kd_audio": {"kd_weight": {"choices": [0.5]}, "target_weight": {"choices": [0.5]}},
                "kd_control": {"kd_weight": {"choices": [1.0]}, "target_weight": {"choices": [0.5]}},
            },
        },
        # speed on the native engine, the CPU deployment (a CPU copy of each CUDA-trained candidate is timed)
        "evaluation": {"embedding": "aisfx", "stream_buffers": [64, 256, 512, 1024], "n_audio_examples": 8,
                       "speed_backend": "native"},
    },
)

# --- compare (issue 13): KD vs scratch vs pruning vs quantization on one CPU machine ------------------------------
# Budgets per family, from measured learning curves: benchmarks/results_learning_curves.md (DDX7 students stay
# converged from 140-180 steps) and the first compare run, benchmarks/results_compare_v1.md (at 600 steps every HpN student
# still improved 8-14 % over its last 20 %, and the 300-step HpN teacher was no better than they were).
_COMPARE_STEPS = {"hpn": 1200, "ddx7": 300}  # teachers and candidates alike
COMPARE_INSTRUMENTS: tuple[str, ...] = ("violin", "flute", "trumpet")
"""The instruments a full compare run covers, one study each (``benchmarks/run_compare.py``); the preset alone is
the first one's."""
_COMPARE = Preset(
    name="compare",
    description=(
        "KD vs scratch vs pruning vs int8 at matched sizes, with compute on the table, per soundfont instrument "
        "(FluidR3_GM violin; benchmarks/run_compare.py runs violin, flute and trumpet as one study each): 80 "
        "recordings (8 test recordings, 24 test clips of 1 s), HpN and DDX7 reduced students, 14 arms per "
        "instrument: scratch at the student's budget and at the teacher's plus the student's (compute-matched to "
        "KD), kd_audio, kd_control, the teacher pruned to about the students' size and fine-tuned plainly or on the "
        "KD loss, int8 of the teacher; every trained arm with 8 runs spread over 2 teachers (teacher seeds), int8 "
        "once per teacher. Budgets per family from measured curves (HpN 1200 steps, DDX7 300; batch 8, 1 s crops, "
        "AdamW 2e-3); FAD (aisfx) beside MSS. Records carry each arm's compute including its teacher's. Measured "
        "times and the verdicts: benchmarks/results_compare.md"
    ),
    tree={
        "preset": "compare",
        "study": "compare",
        # every arm is enqueued (grid covering): 7 per family, each parameter's choices crossed, nothing sampled;
        # each trained configuration runs with 8 seeds (one record each, shared config_id)
        "trials": 14,
        "repeats": 8,
        "grid": True,
        "sampler": "tpe",
        "threads": 1,
        "data": {"dataset": "soundfont", "options": {"instruments": "violin", "recordings": 80},
                 "frames": 250, "max_valid": 8},
        "teacher": {"steps": 300, "family_steps": dict(_COMPARE_STEPS), "batch_size": 8, "lr": 2e-3,
                    "size": "full", "widths": {"hpn": {"hidden": 64}}, "seeds": 2},
        "student": {"steps": 300, "family_steps": dict(_COMPARE_STEPS), "batch_size": 8, "lr": 2e-3},
        "space": {
            "families": ["hpn", "ddx7"],
            "methods": ["scratch", "kd_audio", "kd_control", "prune", "quantize"],
            "sizes": ["reduced"],
            "params": {
                # the student's budget, and the teacher's plus the student's: what KD's arm cost with its teacher
                "scratch": {"budget": {"choices": ["student", "teacher+student"]}},
                "kd_audio": {"kd_weight": {"choices": [0.5]}, "target_weight": {"choices": [0.5]}},
                "kd_control": {"kd_weight": {"choices": [1.0]}, "target_weight": {"choices": [0.5]}},
                # ratio 0.675 leaves HpN(h64) 26.6k / DDX7 58.5k parameters against the reduced students' 23.5k /
                # 67.9k; fine-tuned as many steps as the family's students train (finetune_steps None), on plain MSS
                # or on the KD loss (inherited weights and the distillation target, told apart)
                "prune": {"ratio": {"choices": [0.675]}, "finetune_steps": {"choices": [None]},
                          "kd_weight": {"choices": [0.0, 0.5]}},
                "quantize": {"method": {"choices": ["int8"]}},
            },
        },
        # no "memory": a fresh process per candidate (~10 s) to measure what the architecture fixes, the same for
        # every run of an arm (`ddspbench bench` or a plain sweep measures it)
        "evaluation": {"metrics": ["mss", "mss_teacher", "fad", "rtf", "stream", "size"], "embedding": "aisfx",
                       "stream_buffers": [64, 256], "n_audio_examples": 2, "speed_backend": "native"},
    },
)

PRESETS: dict[str, Preset] = {p.name: p for p in (_SMOKE, _QUICK, _PAPER, _COMPARE)}


def preset_tree(name: str) -> dict[str, Any]:
    """A copy of the partial config tree of preset ``name``."""
    try:
        return copy.deepcopy(PRESETS[name].tree)
    except KeyError:
        raise UserError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None
