"""python -m curation captions --workspace W [--limit N] [--frames 6] [--json]

Writes a caption (the "video caption prompt", from sampled frames) for every accepted video without
one (accepted = current label 'accept'); stores the caption in videos.caption and the model and
template in video_captions. Without an MLLM endpoint it says so and writes nothing."""
from __future__ import annotations

import argparse
import sys

from ..cli import add_workspace_arg, emit


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("captions", help="caption accepted videos that have none (needs an MLLM)")
    add_workspace_arg(p)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--frames", type=int, default=6, help="frames sampled per video")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    return p


def run(args: argparse.Namespace) -> int:
    from curation.captioning import CAPTION_TEMPLATE_NAME, caption_prompt, clean_reply, sample_frames
    from metrics.backends import BackendUnavailable, MLLMError, get_mllm
    from storage import Workspace, backend_store

    with Workspace.open(args.workspace, create=False) as ws:
        todo = backend_store.videos_needing_caption(ws, args.limit)
        try:
            mllm = get_mllm(ws)
        except BackendUnavailable as exc:
            print(f"error: captions need an MLLM endpoint ({len(todo)} accepted videos wait for one): {exc}",
                  file=sys.stderr)
            return 2
        done, failed, errors = 0, 0, []
        for row in todo:
            try:
                try:
                    frames = sample_frames(row["path"], args.frames)
                except Exception as exc:  # av errors, missing file
                    raise MLLMError(f"cannot decode {row['path']}: {exc}") from None
                if not frames:
                    raise MLLMError("no decodable frame")
                text = clean_reply(mllm.chat(caption_prompt(len(frames), row.get("product")), frames, seed=args.seed))
                if not text:
                    raise MLLMError("empty caption after cleaning")
                if backend_store.set_caption(ws, row["id"], text, model=mllm.model, template=CAPTION_TEMPLATE_NAME):
                    done += 1
            except MLLMError as exc:
                failed += 1
                errors.append({"video_id": row["id"], "error": str(exc)})
        payload = {"model": mllm.model, "template": CAPTION_TEMPLATE_NAME, "written": done, "failed": failed,
                   "considered": len(todo), "errors": errors}
    emit(args, payload, lambda p: (f"wrote {p['written']} captions with {p['model']} ({p['template']}); "
                                   f"{p['failed']} failed" + "".join(f"\n  video {e['video_id']}: {e['error']}"
                                                                     for e in p["errors"])))
    return 1 if failed and not done else 0
