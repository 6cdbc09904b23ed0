"""Optional login: users from a JSON config file with salted scrypt password hashes.

The file holds {"users": {"name": {"hash": "scrypt$n$r$p$<salt hex>$<hash hex>", "role": "annotator"}}}.
Passwords never touch the workspace database; labels carry the logged-in user name.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from pathlib import Path

_N, _R, _P = 2 ** 14, 8, 1
NAME_RE = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


class AuthConfigError(Exception):
    pass


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    if not password:
        raise ValueError("empty password")
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        algo, n, r, p, salt, digest = stored.split("$")
        if algo != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(bytes.fromhex(digest)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


def load_users(path: str | Path) -> dict[str, dict]:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AuthConfigError(f"users file {path} does not exist; create it with "
                              f"`python -m curation users add NAME --config {path}`") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise AuthConfigError(f"users file {path} cannot be read: {exc}") from None
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, dict):
        raise AuthConfigError(f"users file {path} has no \"users\" object")
    for name, rec in users.items():
        if not NAME_RE.match(name) or not isinstance(rec, dict) or not str(rec.get("hash", "")).startswith("scrypt$"):
            raise AuthConfigError(f"users file {path}: entry {name!r} is malformed")
    return users


def save_users(path: str | Path, users: dict[str, dict]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"users": users}, indent=2, sort_keys=True), encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)  # atomic: a crash never leaves half a users file


def add_user(path: str | Path, name: str, password: str, role: str = "annotator") -> None:
    if not NAME_RE.match(name):
        raise AuthConfigError(f"user name {name!r} must be 1-64 letters, digits, '.', '_', '@' or '-'")
    users = load_users(path) if Path(path).exists() else {}
    users[name] = {"hash": hash_password(password), "role": role}
    save_users(path, users)


def remove_user(path: str | Path, name: str) -> bool:
    users = load_users(path)
    existed = users.pop(name, None) is not None
    save_users(path, users)
    return existed


def authenticator(path: str | Path):
    """A (username, password) -> bool callable for gradio's launch(auth=...); re-reads the file on change."""
    state = {"mtime": None, "users": {}}

    def check(username: str, password: str) -> bool:
        mtime = Path(path).stat().st_mtime
        if mtime != state["mtime"]:
            state["users"], state["mtime"] = load_users(path), mtime
        rec = state["users"].get(username)
        return bool(rec) and verify_password(password, rec["hash"])

    load_users(path)  # fail at start-up, not at the first login
    return check
