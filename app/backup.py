"""Backup and restore of the whole database: ``flask --app app backup`` / ``restore``.

PostgreSQL uses pg_dump's custom format and pg_restore (the client tools must match
the server's major version; Debian's ``postgresql-client``). SQLite uses the sqlite3
backup API, which copies a consistent snapshot even while the portal is writing.
Attachments and issued documents live in the database, so the dump is everything.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
from datetime import datetime
from typing import Any, Optional

from sqlalchemy.engine import make_url


class BackupError(RuntimeError):
    """A backup or restore that could not be done, with the reason."""


def _libpq_url(url: str) -> str:
    u = make_url(url)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlite_path(url: str) -> str:
    path = make_url(url).database
    if not path or path == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return path


def _digest(path: str) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def default_path(instance_dir: str, backend: str) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    suffix = "dump" if backend == "postgresql" else "sqlite3"
    return os.path.join(instance_dir, "backups", f"complaints-{stamp}.{suffix}")


def _private_file(path: str) -> None:
    """Create ``path`` empty with mode 0600 before any byte is written, so the dump is never
    readable by others, not even while it is being written."""
    if os.path.exists(path):
        os.unlink(path)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def backup(url: str, target: str) -> dict[str, Any]:
    """Write a consistent copy of the database at ``url`` to ``target``, readable by its owner only
    (it holds every customer's data and the password hashes). The copy is written beside the
    target and moved into place when complete: a failed backup leaves an earlier one intact."""
    os.makedirs(os.path.dirname(os.path.abspath(target)), mode=0o700, exist_ok=True)
    backend = make_url(url).get_backend_name()
    if backend not in ("postgresql", "sqlite"):
        raise BackupError(f"unsupported database: {backend}")
    partial = target + ".partial"
    _private_file(partial)
    try:
        if backend == "postgresql":
            _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={partial}", _libpq_url(url)])
        else:
            _sqlite_copy(_sqlite_path(url), partial)
    except BaseException:
        os.unlink(partial)
        raise
    os.replace(partial, target)
    return {"backend": backend, "file": target, "bytes": os.path.getsize(target), "sha256": _digest(target)}


def _sqlite_copy(source_path: str, target: str) -> None:
    source = sqlite3.connect(source_path)
    try:
        destination = sqlite3.connect(target)
        with destination:
            source.backup(destination)
        destination.close()
    finally:
        source.close()


def restore(url: str, source: str) -> dict[str, Any]:
    """Replace the database at ``url`` with the backup in ``source``."""
    if not os.path.exists(source):
        raise BackupError(f"no such backup file: {source}")
    backend = make_url(url).get_backend_name()
    if backend == "postgresql":
        _run(
            [
                "pg_restore",
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                f"--dbname={_libpq_url(url)}",
                source,
            ]
        )
    elif backend == "sqlite":
        path = _sqlite_path(url)
        backup_db = sqlite3.connect(source)
        try:
            if backup_db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise BackupError(f"{source} is not a sound SQLite database")
            target = sqlite3.connect(path)
            with target:
                backup_db.backup(target)
            target.close()
        finally:
            backup_db.close()
    else:
        raise BackupError(f"unsupported database: {backend}")
    return {"backend": backend, "restored_from": source, "sha256": _digest(source)}


def _run(command: list[str]) -> None:
    tool = command[0]
    if shutil.which(tool) is None:
        raise BackupError(f"{tool} is not installed (Debian package postgresql-client)")
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        raise BackupError(f"{tool} failed: {done.stderr.strip()[-2000:]}")


def newest(directory: str) -> Optional[str]:
    if not os.path.isdir(directory):
        return None
    files = sorted(os.path.join(directory, f) for f in os.listdir(directory))
    return files[-1] if files else None
