"""Where a study lives: a local journal file beside the results (default), SQLite, or PostgreSQL.

Storage URLs:

- none given: ``<out>/study.journal`` (Optuna's JournalStorage with a file backend; several processes
  on one machine or a shared filesystem can use it at once);
- ``journal:///abs/path`` or a plain path ending in ``.journal``/``.log``: a journal file there;
- ``sqlite:///path.db``: Optuna's RDB storage on SQLite;
- ``postgresql://user:password@host/db`` (or ``postgresql+psycopg2://...``): RDB storage on
  PostgreSQL, for workers on many machines.

Passwords in URLs are never printed or written: :func:`mask_url` replaces them with ``***`` in
every form (``user:S@``, a raw ``@`` inside the password, ``?password=S`` and other secret query
parameters, any ``scheme+driver://``). The URL can come from ``$DDSPBENCH_STORAGE`` instead of the
command line, where other users of the machine could read it.

A journal file whose last entry was cut short (a process killed mid-write) is repaired when it is
opened: the partial entry is moved to ``<journal>.partial`` and a warning says so. A garbled entry
elsewhere is a one-line error naming its line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ddspbench.suite.errors import UserError
from ddspbench.suite.locks import file_lock

if TYPE_CHECKING:
    import optuna

__all__ = ["default_storage_url", "mask_url", "mask_secrets", "url_secrets", "open_storage", "slot_lock",
           "storage_kind", "repair_journal", "quote_password"]

_SCHEME = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)")
_SECRET_QUERY = re.compile(r"(?P<key>(?:^|[?&;])[^=&;?]*(?:pass|pwd|secret|token|key)[^=&;]*=)(?P<value>[^&;]*)",
                           re.IGNORECASE)


def _split_userinfo(rest: str) -> tuple[str, str] | None:
    """``rest`` (what follows ``scheme://``) -> ``(userinfo, after)`` split at the userinfo's ``@``.

    The userinfo ends at the last ``@`` before the query (a raw ``@`` may sit inside a password);
    failing that, at the last ``@`` at all (a ``?`` inside the password).
    """
    head = rest.split("?", 1)[0]
    at = head.rfind("@")
    if at < 0:
        at = rest.rfind("@")
    if at < 0:
        return None
    return rest[:at], rest[at:]


def mask_url(url: str) -> str:
    """``url`` with its password and secret query values replaced by ``***``.

    ``postgresql://me:S@host/db`` -> ``postgresql://me:***@host/db``, also with a raw ``@`` in ``S``,
    ``postgresql+psycopg2://...`` and ``...?password=S`` (``sslpassword``, ``token``... too).
    """
    m = _SCHEME.search(url)
    if m is None:
        return _SECRET_QUERY.sub(lambda q: q.group("key") + "***", url)
    prefix, rest = url[: m.end()], url[m.end():]
    split = _split_userinfo(rest)
    if split is not None:
        userinfo, after = split
        if ":" in userinfo:
            rest = userinfo.split(":", 1)[0] + ":***" + after
    return prefix + _SECRET_QUERY.sub(lambda q: q.group("key") + "***", rest)


def url_secrets(url: str) -> list[str]:
    """The secrets a URL carries (password, secret query values), raw and percent-decoded."""
    found: list[str] = []
    m = _SCHEME.search(url)
    rest = url[m.end():] if m else url
    split = _split_userinfo(rest) if m else None
    if split is not None and ":" in split[0]:
        found.append(split[0].split(":", 1)[1])
    found += [q.group("value") for q in _SECRET_QUERY.finditer(rest)]
    out: list[str] = []
    for s in found:
        for v in (s, urllib.parse.unquote(s), urllib.parse.unquote_plus(s)):
            if v and v != "***" and v not in out:
                out.append(v)
    return sorted(out, key=len, reverse=True)


def quote_password(url: str) -> str:
    """``url`` with a raw ``@``, ``/``, ``:``, ``?`` or ``#`` in its password percent-encoded.

    Drivers split ``user:p@ss@host`` at the first ``@`` (connecting to host ``ss@host`` and printing
    it in their error); the userinfo really ends at the last one.
    """
    m = _SCHEME.search(url)
    split = _split_userinfo(url[m.end():]) if m and m.start() == 0 else None
    if split is None or ":" not in split[0]:
        return url
    user, password = split[0].split(":", 1)
    safe = "".join(urllib.parse.quote(c, safe="") if c in "@/:?#" else c for c in password)
    return f"{url[: m.end()]}{user}:{safe}{split[1]}" if m else url


def mask_secrets(text: str, url: str) -> str:
    """``text`` (e.g. a driver's error message) with ``url``'s secrets masked wherever they appear."""
    text = mask_url(text)
    for secret in url_secrets(url):
        if len(secret) >= 3:  # shorter ones would mask ordinary letters of the message
            text = text.replace(secret, "***")
    return text


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
            if path.is_file():
                repair_journal(path, lock)
            backend = JournalFileBackend(str(path), lock_obj=lock)
            return optuna.storages.JournalStorage(backend)
        url = quote_password(url)
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
        raise UserError(f"cannot open storage {mask_url(url)}: {mask_secrets(first, url)[:300]}") from None


def repair_journal(path: Path, lock: object | None = None) -> int:
    """Check a journal file; move a last entry cut short by a killed writer to ``<path>.partial``.

    Returns how many bytes were moved (0: the journal was whole). Holds the journal's own lock
    (``lock``, an Optuna ``JournalFileOpenLock``) while it looks, so no live writer is mid-entry.

    Raises:
        UserError: an entry before the last is not a journal entry (the file was edited or garbled);
            the message names its line.
    """
    acquire = getattr(lock, "acquire", None)
    release = getattr(lock, "release", None)
    if callable(acquire):
        acquire()
    try:
        data = path.read_bytes()
        moved = 0
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            partial = path.with_name(path.name + ".partial")
            with open(partial, "ab") as fh:
                fh.write(data[cut:] + b"\n")
            with open(path, "r+b") as fh:
                fh.truncate(cut)
                fh.flush()
                os.fsync(fh.fileno())
            moved = len(data) - cut
            data = data[:cut]
            print(f"warning: {path}: its last entry was cut short ({moved} bytes, a process killed while writing); "
                  f"moved to {partial.name}, the study goes on without it", file=sys.stderr)
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if not isinstance(entry, dict) or "op_code" not in entry:
                raise UserError(f"{path}: line {number} is not an Optuna journal entry (the file was edited or "
                                "corrupted); restore it from a copy, or start a new study with another --study/--out")
        return moved
    finally:
        if callable(release):
            release()


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
