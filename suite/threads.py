"""Running a GIL-releasing (numba ``nogil``) kernel over slices of a batch on ``torch.get_num_threads()`` threads.

The compiled training kernels (:mod:`baselines._train_kernels`, :mod:`suite.metrics._mss_kernels`) use
Python threads rather than numba's threading layer, so they never start a second OpenMP runtime next
to torch's and follow the thread count torch was given (``TrainConfig.threads``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

__all__ = ["run_batch_split"]

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


_pool_pid = 0


def _executor(workers: int) -> ThreadPoolExecutor:
    """The shared pool, grown when more workers are wanted and rebuilt in a forked child (whose copy has no threads)."""
    global _pool, _pool_size, _pool_pid
    with _lock:
        if _pool is not None and _pool_pid != os.getpid():
            _pool, _pool_size = None, 0  # the parent's threads do not exist here; never wait on them
        if _pool is None or _pool_size < workers:
            _pool_pid = os.getpid()
            old = _pool
            _pool, _pool_size = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ddsp-kernel"), workers
            if old is not None:
                old.shutdown(wait=False)
        return _pool


def run_batch_split(kernel: Callable[..., None], batch: int, *args: Any) -> None:
    """``kernel(*args, b0, b1)`` for consecutive slices ``[b0, b1)`` of ``range(batch)``, one per thread."""
    workers = max(1, min(torch.get_num_threads(), batch))
    if workers == 1:
        kernel(*args, 0, batch)
        return
    cuts = np.linspace(0, batch, workers + 1).astype(np.int64)
    pool = _executor(workers)
    jobs = [pool.submit(kernel, *args, int(lo), int(hi)) for lo, hi in zip(cuts[:-1], cuts[1:])]
    for job in jobs:
        job.result()
