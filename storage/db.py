"""The workspace: a folder holding `studio.duckdb` and derived files.

DuckDB is the single source of truth. One process writes; inside it every write goes through
one lock so concurrent requests (Gradio worker threads) are serialized, and every read uses a
thread-local cursor because a DuckDB connection object is not thread-safe.
"""
from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

DB_NAME = "studio.duckdb"
SUBDIRS = ("thumbs", "overlays", "runs", "models", "media", "exports")


class WorkspaceError(Exception):
    """A workspace cannot be opened or used; the message says what and where."""


class WorkspaceLockedError(WorkspaceError):
    pass


def first(result: duckdb.DuckDBPyConnection) -> tuple | None:
    """The first row of an executed statement, reading the result to its end (DuckDB 2 keeps a
    half-read result open on the connection and refuses some later calls)."""
    rows = result.fetchall()
    return rows[0] if rows else None


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        m = re.match(r"^(\d{4})_(\w+)\.sql$", entry.name)
        if m:
            found.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found)


LATEST_VERSION = max(v for v, _, _ in _migrations())


class Workspace:
    """An open workspace. Create with `Workspace.open(path)`; close with `.close()` or `with`."""

    def __init__(self, root: Path, con: duckdb.DuckDBPyConnection, read_only: bool) -> None:
        self.root = root
        self.read_only = read_only
        self._con = con
        self._write_lock = threading.RLock()
        self._local = threading.local()
        self._closed = False
        # counts derived from this workspace's tables and kept up to date by storage (label progress): owned by
        # the open workspace, so they end with it and can never be read through another one
        self.derived: dict = {}
        self.derived_lock = threading.Lock()

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, root: str | Path, *, create: bool = True, read_only: bool = False) -> "Workspace":
        root = Path(root).expanduser().resolve()
        db_path = root / DB_NAME
        if not db_path.exists():
            if read_only or not create:
                raise WorkspaceError(f"no workspace at {root} (missing {DB_NAME}); "
                                     f"create one with `python -m curation ingest --workspace {root} ...`")
            if root.exists() and not root.is_dir():
                raise WorkspaceError(f"workspace path {root} exists and is not a folder")
            root.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(db_path), read_only=read_only)
        except duckdb.IOException as exc:
            msg = str(exc)
            if "lock" in msg.lower():
                pid = re.search(r"PID (\d+)", msg)
                who = f" (process {pid.group(1)})" if pid else ""
                raise WorkspaceLockedError(
                    f"workspace {root} is open for writing by another process{who}; "
                    "stop the app or the other command, then retry") from None
            raise WorkspaceError(f"cannot open {db_path}: {msg}") from None
        except duckdb.Error as exc:
            raise WorkspaceError(f"cannot open {db_path}: {exc}") from None
        ws = cls(root, con, read_only)
        if not read_only:
            for sub in SUBDIRS:
                (root / sub).mkdir(exist_ok=True)
            ws.migrate()
        else:
            v = ws.schema_version()
            if v != LATEST_VERSION:
                con.close()
                raise WorkspaceError(f"workspace {root} is at schema version {v}, this program "
                                     f"needs {LATEST_VERSION}; open it once for writing to migrate")
        return ws

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with self._write_lock:
                self._con.close()

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    def path(self, *parts: str) -> Path:
        """A derived-file path inside the workspace."""
        return self.root.joinpath(*parts)

    # -- migrations ------------------------------------------------------------------------
    def schema_version(self) -> int:
        has = self._con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
        ).fetchall()[0][0]
        if not has:
            return 0
        return self._con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchall()[0][0]

    def migrate(self) -> list[int]:
        """Apply every migration newer than the file's version, each in its own transaction."""
        applied = []
        with self._write_lock:
            self._con.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                              "version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                              "applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)")
            current = self.schema_version()
            if current > LATEST_VERSION:
                raise WorkspaceError(f"workspace {self.root} has schema version {current}, newer "
                                     f"than this program's {LATEST_VERSION}: upgrade the studio")
            done = {r[0] for r in self._con.execute("SELECT version FROM schema_migrations").fetchall()}
            for version, name, sql in _migrations():
                if version in done:  # by set, not by max: a migration merged late still runs
                    continue
                self._con.execute("BEGIN TRANSACTION")
                try:
                    self._con.execute(sql)
                    self._con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                                      [version, name])
                    self._con.execute("COMMIT")
                except Exception:
                    self._con.execute("ROLLBACK")
                    raise
                applied.append(version)
            if applied:
                self._con.execute("CHECKPOINT")
        return applied

    # -- access ----------------------------------------------------------------------------
    def _cursor(self) -> duckdb.DuckDBPyConnection:
        if self._closed:
            raise WorkspaceError(f"workspace {self.root} is closed")
        cur = getattr(self._local, "cur", None)
        if cur is None:
            cur = self._con.cursor()
            self._local.cur = cur
        return cur

    def query(self, sql: str, params: Any = None) -> list[tuple]:
        return self._cursor().execute(sql, params or []).fetchall()

    def query_one(self, sql: str, params: Any = None) -> tuple | None:
        # fetchall, not fetchone: DuckDB 2 keeps a half-read result open and refuses register() after it
        rows = self._cursor().execute(sql, params or []).fetchall()
        return rows[0] if rows else None

    def query_dicts(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        cur = self._cursor().execute(sql, params or [])
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Serialized write transaction; committed (and durable in the WAL) when the block exits."""
        if self.read_only:
            raise WorkspaceError(f"workspace {self.root} is open read-only")
        with self._write_lock:
            cur = self._cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")

    def execute(self, sql: str, params: Any = None) -> list[tuple]:
        """One write statement in its own transaction; returns any RETURNING rows."""
        with self.transaction() as cur:
            rows = cur.execute(sql, params or [])
            try:
                return rows.fetchall()
            except duckdb.Error:
                return []
