"""Where a study lives: a local journal file beside the results (default), SQLite, or PostgreSQL.

Storage URLs:

- none given: ``<out>/study.journal`` (Optuna's JournalStorage with a file backend; several processes
  on one machine or a shared filesystem can use it at once);
- ``journal:///abs/path`` or a plain path ending in ``.journal``/``.log``: a journal file there;
- ``sqlite:///path.db``: Optuna's RDB storage on SQLite;
- ``postgresql://user:password@host/db`` (or ``postgresql+psycopg2://...``): RDB storage on
  PostgreSQL, for workers on many machines.

Passwords in URLs are never printed or written: :func:`mask_url` replaces them with ``***``.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from suite.errors import UserError
from suite.locks import file_lock

if TYPE_CHECKING:
    import optuna

__all__ = ["default_storage_url", "mask_url", "open_storage", "slot_lock", "storage_kind"]

_PASSWORD = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@]*):(?P<pw>[^@]*)@")


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (``postgresql://me:***@host/db``)."""
    return _PASSWORD.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:***@", url)


def default_storage_url(out_dir: str | Path) -> str:
    """The local journal file beside the results."""
    return f"journal://{Path(out_dir).resolve() / 'study.journal'}"


def storage_kind(url: str) -> str:
    """``journal``, ``sqlite``, ``postgresql`` or ``rdb`` (another SQLAlchemy URL)."""
    if url.startswith("journal://") or url.endswith((".journal", ".log")) and "://" not in url:
        return "journal"
    if url.startswith("sqlite:"):
        return "sqlite"
    if url.startswith(("postgresql:", "postgresql+", "postgres:")):
        return "postgresql"
    if "://" in url:
        return "rdb"
    raise UserError(f"storage {mask_url(url)!r}: use journal:///path, a *.journal path, sqlite:///path or postgresql://...")


def _journal_path(url: str) -> Path:
    return Path(url[len("journal://") :] if url.startswith("journal://") else url)


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """Open (creating when needed) the Optuna storage at ``url``; failures are one-line UserErrors."""
    import optuna

    kind = storage_kind(url)
    try:
        if kind == "journal":
            path = _journal_path(url)
            path.parent.mkdir(parents=True, exist_ok=True)
            from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

            lock = JournalFileOpenLock(str(path))
            backend = JournalFileBackend(str(path), lock_obj=lock)
            return optuna.storages.JournalStorage(backend)
        if kind == "postgresql":
            url = _postgres_driver(url)
        if kind == "sqlite":
            db = url.split(":///", 1)[-1]
            if db and db != ":memory:":
                Path(db).parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"pool_pre_ping": True} if kind == "postgresql" else None
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - driver errors become one line, credentials masked
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot open storage {mask_url(url)}: {mask_url(first)[:300]}") from None


def _postgres_driver(url: str) -> str:
    """Name a driver that is installed: SQLAlchemy 2.1 means psycopg 3 by a bare ``postgresql://``,
    while the project's extra installs psycopg2."""
    import importlib.util

    if url.startswith("postgres:"):
        url = "postgresql:" + url[len("postgres:") :]
    if url.startswith("postgresql://"):
        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
            return "postgresql+psycopg2://" + url[len("postgresql://") :]
        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is None:
            raise UserError("PostgreSQL storage needs a driver: pip install 'ddspbench[postgres]' (psycopg2-binary)")
    return url


@contextlib.contextmanager
def slot_lock(url: str, storage: optuna.storages.BaseStorage, study_name: str) -> Iterator[None]:
    """Mutual exclusion between the processes of one study while they count trials and ask for one.

    A file lock beside a journal/SQLite file; a PostgreSQL advisory lock (keyed by the study name)
    on PostgreSQL. This is what makes "exactly N finished trials" hold with many workers.
    """
    kind = storage_kind(url)
    if kind in ("journal", "sqlite"):
        path = _journal_path(url) if kind == "journal" else Path(url.split(":///", 1)[-1])
        with file_lock(path.with_name(path.name + ".slots.lock")):
            yield
        return
    engine = getattr(storage, "engine", None)
    if kind == "postgresql" and engine is not None:
        from sqlalchemy import text

        key = int.from_bytes(hashlib.sha256(f"ddspbench:{study_name}".encode()).digest()[:8], "big", signed=True)
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        return
    yield
