"""One module per ``ddspbench`` sub-command (``HELP``, ``add_arguments``, ``run``).

The CLI imports every sub-command module to build its parser, so these modules import torch, the
models, the compressors and the sweep inside ``run`` (lazily, on purpose): ``ddspbench --help`` and a
mistyped flag answer at once instead of after seconds of importing torch and compiling kernels.
"""
