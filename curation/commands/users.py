"""python -m curation users add|remove|list --config FILE"""
from __future__ import annotations

import argparse
import getpass
import os
import sys

from ..auth import AuthConfigError, add_user, load_users, remove_user


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("users", help="manage app logins (salted scrypt hashes in a JSON file)")
    p.add_argument("action", choices=["add", "remove", "list"])
    p.add_argument("name", nargs="?")
    p.add_argument("--config", required=True, help="users file, e.g. workspace/users.json")
    p.add_argument("--role", default="annotator")
    p.add_argument("--password-env", help="read the password from this environment variable (for scripts)")
    return p


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "list":
            for name, rec in sorted(load_users(args.config).items()):
                print(f"{name}\t{rec.get('role', '')}")
            return 0
        if not args.name:
            print("error: a user name is required", file=sys.stderr)
            return 2
        if args.action == "remove":
            return 0 if remove_user(args.config, args.name) else 1
        password = os.environ.get(args.password_env, "") if args.password_env else getpass.getpass("password: ")
        add_user(args.config, args.name, password, args.role)
        print(f"user {args.name} saved in {args.config}")
        return 0
    except (AuthConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
