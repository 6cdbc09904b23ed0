"""The architecture as tests: SQL only in storage/, and the layer contract (pyproject's [tool.importlinter])."""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Not product code: the storage layer itself, tests, benchmark scripts, installed packages.
EXEMPT = {"storage", "tests", "bench", ".venv", "venv", "workspace", "build", "dist"}
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

# Statement shapes, not single words: prose such as "update the queue" or "select a model" must not match.
SQL = re.compile(
    r"\bSELECT\b[\s\S]*\bFROM\b|\bINSERT\s+(OR\s+\w+\s+)?INTO\b|\bUPDATE\s+\S+\s+SET\b|\bDELETE\s+FROM\b"
    r"|\b(CREATE|DROP)\s+(OR\s+REPLACE\s+)?(TEMP\w*\s+)?(TABLE|VIEW|INDEX|SEQUENCE|SCHEMA|MACRO)\b"
    r"|\bALTER\s+TABLE\b|\b(LEFT|INNER|OUTER)\s+JOIN\b|\bGROUP\s+BY\b|\bORDER\s+BY\b")
# What a DuckDB connection or the Workspace's raw access is called through.
DB_CALLS = {"execute", "executemany", "query", "query_one", "query_dicts", "sql", "fetchall", "fetchone",
            "fetchdf", "fetch_arrow_table", "register", "unregister", "transaction", "_cursor"}


def product_files() -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel = Path(dirpath).relative_to(ROOT)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__"
                             and not (rel == Path(".") and d in EXEMPT))
        out += [Path(dirpath) / f for f in sorted(filenames) if f.endswith(".py")]
    return out


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def sql_sites(path: Path) -> list[str]:
    """file:line: what, for every SQL text, database call or DuckDB import in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip = _docstrings(tree)
    skip |= {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}  # seen whole
    rel = path.relative_to(ROOT)
    found = []
    for node in ast.walk(tree):
        text = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "x" for v in node.values)
        if text is not None and SQL.search(text):
            found.append(f"{rel}:{node.lineno}: SQL text {text[:60]!r}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in DB_CALLS:
            owner = ast.unparse(node.func.value)
            if re.search(r"(^|\.|_)(ws|workspace|con|conn|cur|cursor|db)$", owner):
                found.append(f"{rel}:{node.lineno}: database call {owner}.{node.func.attr}()")
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "duckdb" for a in node.names) or \
                isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "duckdb":
            found.append(f"{rel}:{node.lineno}: imports duckdb")
    return found


def test_no_sql_outside_storage():
    files = product_files()
    assert any(f.name == "app.py" for f in files) and len(files) > 50, "the walk missed the product code"
    sites = sorted({s for f in files for s in sql_sites(f)}, key=lambda s: (s.split(":")[0], int(s.split(":")[1])))
    assert not sites, "SQL belongs in storage/ (a function per query, grouped by entity):\n" + "\n".join(sites)


def test_the_sql_detector_sees_sql(tmp_path, monkeypatch):
    """The grep is only worth something if it fires: every shape of database access found in the product code
    before the move, and none of the prose around it."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    bad = tmp_path / "bad.py"
    bad.write_text(textwrap.dedent('''
        """Docstrings may say SELECT x FROM y."""
        import duckdb
        def f(ws, table, ids):
            ws.query("SELECT id FROM " + table)
            rows = ws.query_dicts(f"SELECT id, sha256 FROM {table} WHERE id IN ({ids})")
            sql = ("SELECT e.id FROM label_events e "
                   "LEFT JOIN images i ON i.id = e.item_id")
            self.svc.ws.query_one(sql)
            return "update the queue, then select a model from the list, order by hand"
        '''), encoding="utf-8")
    lines = sorted({s for s in sql_sites(bad)}, key=lambda s: int(s.split(":")[1]))
    assert [int(s.split(":")[1]) for s in lines] == [3, 5, 5, 6, 6, 7, 9], lines


# -- the layer contract ----------------------------------------------------------------------------
def _lint(cwd: Path, *config: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", *config], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_import_contract_holds():
    assert LINT_IMPORTS.exists(), f"import-linter is a test requirement; {LINT_IMPORTS} is missing"
    res = _lint(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout


# A small tree with the real packages' names; the contract is read from the real pyproject.toml.
_TREE = {"storage/__init__.py": "", "storage/db.py": "",
         "media/__init__.py": "", "media/files.py": "",
         "metrics/__init__.py": "", "metrics/registry.py": "from media import files\nfrom storage import db\n",
         "curation/__init__.py": "", "curation/scoring.py": "from metrics import registry\nfrom storage import db\n",
         "labeling/__init__.py": "", "labeling/service.py": "from curation import scoring\n",
         "app.py": "import labeling.service\n"}


def _tree(root: Path, extra: dict[str, str]) -> Path:
    for rel, text in {**_TREE, **extra}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


def test_import_contract_passes_a_right_way_tree(tmp_path):
    res = _lint(_tree(tmp_path, {}), str(ROOT / "pyproject.toml"))
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("extra, shown", [
    # the cycle this contract was written against: a metric loading images through curation, inside a function
    ({"metrics/registry.py": "def load(p):\n    from curation.scoring import x\n    return x(p)\n"},
     "metrics.registry -> curation.scoring"),
    ({"curation/scoring.py": "import labeling.service\n"}, "curation.scoring -> labeling.service"),
    ({"storage/db.py": "from media import files\n"}, "storage.db -> media.files"),
    ({"labeling/service.py": "import app\n"}, "labeling.service -> app"),
], ids=["metrics->curation (local import)", "curation->labeling", "storage->media", "labeling->app"])
def test_import_contract_fails_a_wrong_way_import(tmp_path, extra, shown):
    res = _lint(_tree(tmp_path, extra), str(ROOT / "pyproject.toml"))
    assert res.returncode != 0, res.stdout
    assert shown in res.stdout, res.stdout
