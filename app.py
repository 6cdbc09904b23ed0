"""The review app: `python app.py --workspace W [--host 127.0.0.1] [--port 7860] [--users FILE]`.

A workspace that does not exist yet is created with the demo media first (curation.demo). Heavy model
libraries (torch, open_clip, sam2) are imported lazily by the features that need them, never at start-up.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python app.py", description="Ad-VFX curation studio: the review app")
    p.add_argument("--workspace", "-w", default="workspace", help="workspace folder (created with demo media if "
                   "missing)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--users", default=os.environ.get("ADVFX_USERS"),
                   help="users file (salted scrypt hashes; `python -m curation users add NAME --config FILE`) "
                        "to require a login; the login names the annotator")
    p.add_argument("--auth", default=os.environ.get("ADVFX_AUTH"),
                   help="user:password[,user:password...] for a quick throw-away login (prefer --users)")
    p.add_argument("--no-demo", action="store_true", help="fail instead of generating the demo workspace")
    return p.parse_args(argv)


def ensure_workspace(path: str | Path, *, demo: bool = True) -> tuple[Path, bool]:
    """(the workspace root, whether the demo workspace was generated just now)."""
    root = Path(path).expanduser().resolve()
    made = False
    if not (root / "studio.duckdb").exists():
        if not demo:
            raise SystemExit(f"error: no workspace at {root}")
        from curation.demo import build_demo_workspace

        print(f"no workspace at {root}: generating the demo workspace…", flush=True)
        report = build_demo_workspace(root, seed=0)
        print(f"demo workspace ready: {report['added']}; its videos are scored in the background", flush=True)
        made = True
    return root, made


def create(workspace: str | Path, *, auth_enabled: bool = False, score_at_start: bool = False):
    """Open the workspace and build the app; returns (blocks, launch kwargs, workspace)."""
    # The overlay worker's ONNX models (segmenter, OCR) would take every core; leave one to the handlers so a
    # key press is answered while an overlay is computed (the variables are read when the models load)
    spare = str(max(1, (os.cpu_count() or 2) - 1))
    os.environ.setdefault("ADVFX_SEG_THREADS", spare)
    os.environ.setdefault("ADVFX_OCR_THREADS", spare)
    from storage import Workspace

    from labeling.ui import build_app

    ws = Workspace.open(workspace)
    demo, launch_kw = build_app(ws, auth_enabled=auth_enabled, score_at_start=score_at_start)
    return demo, launch_kw, ws


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root, made = ensure_workspace(args.workspace, demo=not args.no_demo)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    # Gradio's own copies of handler outputs live inside the workspace too (set before gradio is imported)
    os.environ.setdefault("GRADIO_TEMP_DIR", str(root / "tmp" / "gradio"))
    auth = None
    if args.users:
        from curation.auth import AuthConfigError, authenticator

        try:
            auth = authenticator(args.users)
        except AuthConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    elif args.auth:
        auth = [tuple(pair.split(":", 1)) for pair in args.auth.split(",") if ":" in pair]
    from storage import WorkspaceError

    try:
        demo, launch_kw, ws = create(root, auth_enabled=bool(auth), score_at_start=made)
    except WorkspaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    demo.queue(default_concurrency_limit=4)
    demo.launch(server_name=args.host, server_port=args.port, auth=auth, show_error=True, **launch_kw)
    ws.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
