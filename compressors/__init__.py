"""What turns a trained teacher into a cheaper candidate: KD (audio, control, feature), pruning, quantization, chains.

Importing this package registers every compressor in ``suite.registry.COMPRESSORS`` (and the
quantization transforms in ``suite.checkpoint.TRANSFORMS``). Use one as::

    from ddspbench.compressors import CompressContext, get_compressor
    result = get_compressor("prune+kd_audio+quantize").compress(teacher, ctx, **{"prune.ratio": 0.5})
"""

from __future__ import annotations

from ddspbench.compressors._base import (
    CompressContext,
    Compressor,
    CompressResult,
    build_student,
    clone_model,
    frozen,
)
from ddspbench.compressors._distill import KDAudio, KDControl, KDFeature, Scratch
from ddspbench.compressors._onnx import OrtDecoder, onnx_available, quantize_onnx_int8
from ddspbench.compressors._prune import Prune, structured_prune
from ddspbench.compressors._quantize import Quantize, quantize_bf16, quantize_int8
from ddspbench.compressors._stats import count_params, measure_rtf, serialized_bytes
from ddspbench.compressors.chain import Chain, get_compressor, parse_chain, run_chain

__all__ = [
    "Compressor",
    "CompressContext",
    "CompressResult",
    "build_student",
    "clone_model",
    "frozen",
    "Scratch",
    "KDAudio",
    "KDControl",
    "KDFeature",
    "Prune",
    "structured_prune",
    "Quantize",
    "quantize_int8",
    "quantize_bf16",
    "quantize_onnx_int8",
    "onnx_available",
    "OrtDecoder",
    "Chain",
    "get_compressor",
    "parse_chain",
    "run_chain",
    "count_params",
    "serialized_bytes",
    "measure_rtf",
]
