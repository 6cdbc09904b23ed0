"""The lock files: parse them, check them against requirements*.txt, install from them.

Stdlib only: it runs before anything is installed (`make run` / `make test` call `install`).

    python tools/lockfile.py install requirements.lock      # hash-checked, exact, in two steps
    python tools/lockfile.py check                           # requirements*.txt and the locks agree

Why two steps: sam2 ships only an sdist whose build imports torch, so it is built after everything else
is installed, without build isolation (against the locked torch) and with its CUDA extension off.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# requirement file -> the lock it resolves into
LOCKS = {"requirements.txt": "requirements.lock", "requirements-test.txt": "requirements-test.lock"}
BUILT_LAST = ("sam2",)  # sdists whose build needs the locked torch installed first


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Entry:
    name: str
    version: str
    text: str                      # the whole block: pin, hashes and "# via" comments
    via: list[str] = field(default_factory=list)


def parse_lock(path: Path) -> dict[str, Entry]:
    """Entries of a `uv pip compile --generate-hashes` lock, keyed by canonical name."""
    entries: dict[str, Entry] = {}
    cur: Entry | None = None
    in_via = False
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s\\;]+)", line)
        if m:
            cur = Entry(canonical(m.group(1)), m.group(3), line + "\n")
            entries[cur.name] = cur
            in_via = False
            continue
        if cur is None:
            continue
        cur.text += line + "\n"
        s = line.strip()
        if s.startswith("# via"):
            rest = s[len("# via"):].strip()
            in_via = not rest
            if rest:
                cur.via.append(rest)
        elif in_via and s.startswith("#   "):
            cur.via.append(s[4:].strip())
        elif not s.startswith("--hash"):
            in_via = False
    return entries


def parse_requirements(path: Path, seen: set[Path] | None = None) -> dict[str, str]:
    """Direct requirements of a requirements file (following -r), canonical name -> specifier."""
    seen = seen or set()
    path = path.resolve()
    if path in seen:
        return {}
    seen.add(path)
    reqs: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            reqs.update(parse_requirements(path.parent / line.split(None, 1)[1], seen))
            continue
        if line.startswith("-"):
            continue
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$", line)
        if m:
            reqs[canonical(m.group(1))] = m.group(3).split(";")[0].strip()
    return reqs


def _version_tuple(v: str) -> tuple:
    parts = []
    for p in re.split(r"[.+-]", v):
        parts.append((0, int(p)) if p.isdigit() else (-1, p))
    return tuple(parts)


def satisfies(version: str, spec: str) -> bool:
    """Enough of PEP 440 for the specifiers we write (==, >=, <=, <, >, !=, comma-joined)."""
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        m = re.match(r"^(==|>=|<=|!=|<|>|~=)\s*(\S+)$", clause)
        if not m:
            return False
        op, want = m.groups()
        a, b = _version_tuple(version), _version_tuple(want.rstrip(".*"))
        if op == "==" and not (a == b or (want.endswith(".*") and a[:len(b)] == b)):
            return False
        if (op == ">=" and a < b) or (op == "<=" and a > b) or (op == "<" and a >= b) or (op == ">" and a <= b):
            return False
        if op == "!=" and a == b:
            return False
        if op == "~=" and (a < b or a[:len(b) - 1] != b[:len(b) - 1]):
            return False
    return True


def check(root: Path = ROOT) -> list[str]:
    """Every way requirements*.txt and the locks disagree, as sentences (empty when they agree)."""
    problems: list[str] = []
    locks = {}
    for req_name, lock_name in LOCKS.items():
        req_path, lock_path = root / req_name, root / lock_name
        if not lock_path.exists():
            problems.append(f"{lock_name} is missing: run `make lock`")
            continue
        reqs, lock = parse_requirements(req_path), parse_lock(lock_path)
        locks[lock_name] = lock
        for name, spec in sorted(reqs.items()):
            if name not in lock:
                problems.append(f"{name} is in {req_name} but not in {lock_name}: run `make lock`")
            elif spec and not satisfies(lock[name].version, spec):
                problems.append(f"{lock_name} has {name}=={lock[name].version}, outside `{spec}` of {req_name}: "
                                "run `make lock`")
        # reachable from requirements*.txt through the lock's own "# via" notes; a "-r" note is the lock's
        # memory of a requirement, not proof it is still there
        needed = set(reqs) & set(lock)
        grew = True
        while grew:
            grew = False
            for name, entry in lock.items():
                if name not in needed and {canonical(v.split()[0]) for v in entry.via} & needed:
                    needed.add(name)
                    grew = True
        for name in sorted(set(lock) - needed):
            problems.append(f"{name} is in {lock_name} but nothing in {req_name} needs it: run `make lock`")
    if len(locks) == 2:
        run, test = locks["requirements.lock"], locks["requirements-test.lock"]
        for name, entry in sorted(run.items()):
            if name in test and test[name].version != entry.version:
                problems.append(f"{name} is {entry.version} in requirements.lock but {test[name].version} in "
                                "requirements-test.lock: run `make lock`")
    return problems


def install(lock_path: Path, python: str = sys.executable) -> None:
    entries = parse_lock(lock_path)
    first = [e.text for n, e in entries.items() if n not in BUILT_LAST]
    last = [e.text for n, e in entries.items() if n in BUILT_LAST]
    pip = [python, "-m", "pip", "install", "-q", "--require-hashes", "--no-deps"]
    env = dict(os.environ, SAM2_BUILD_CUDA="0")
    with tempfile.TemporaryDirectory() as tmp:
        for i, (block, extra) in enumerate(((first, []), (last, ["--no-build-isolation"]))):
            if not block:
                continue
            part = Path(tmp) / f"part{i}.txt"
            part.write_text("".join(block))
            subprocess.run(pip + extra + ["-r", str(part)], check=True, env=env)


def main(argv: list[str]) -> int:
    if argv[:1] == ["install"] and len(argv) == 2:
        install(Path(argv[1]))
        return 0
    if argv == ["check"]:
        problems = check()
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
