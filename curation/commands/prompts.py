"""python -m curation prompts --workspace W [--limit N] [--json]

Writes a motion-aware video prompt (the "video description prompt") for every image that has none,
with the configured MLLM; stored in prompts with source 'mllm:<model>' and the template name.
Without an MLLM endpoint it says so and writes nothing."""
from __future__ import annotations

import argparse
import sys

from ..cli import add_workspace_arg, emit


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("prompts", help="write motion-aware I2V prompts for images without one (needs an MLLM)")
    add_workspace_arg(p)
    p.add_argument("--limit", type=int, default=None, help="at most this many images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    return p


def run(args: argparse.Namespace) -> int:
    from curation.captioning import DESCRIPTION_TEMPLATE_NAME, clean_reply, description_prompt
    from media.files import MediaError, load_image
    from metrics.backends import BackendUnavailable, MLLMError, get_mllm
    from storage import Workspace, backend_store

    with Workspace.open(args.workspace, create=False) as ws:
        todo = backend_store.images_without_prompt(ws, args.limit)
        try:
            mllm = get_mllm(ws)
        except BackendUnavailable as exc:
            print(f"error: prompts need an MLLM endpoint ({len(todo)} images wait for one): {exc}", file=sys.stderr)
            return 2
        done, failed, errors = 0, 0, []
        for row in todo:
            try:
                img = load_image(row["path"])
                text = clean_reply(mllm.chat(description_prompt(row.get("product")), [img], seed=args.seed))
                if not text:
                    raise MLLMError("empty prompt after cleaning")
                backend_store.add_generated_prompt(ws, row["id"], text, model=mllm.model,
                                                   template=DESCRIPTION_TEMPLATE_NAME)
                done += 1
            except (MLLMError, MediaError) as exc:
                failed += 1
                errors.append({"image_id": row["id"], "error": str(exc)})
        payload = {"model": mllm.model, "template": DESCRIPTION_TEMPLATE_NAME, "written": done, "failed": failed,
                   "considered": len(todo), "errors": errors}
    emit(args, payload, lambda p: (f"wrote {p['written']} prompts with {p['model']} ({p['template']}); "
                                   f"{p['failed']} failed" + "".join(f"\n  image {e['image_id']}: {e['error']}"
                                                                     for e in p["errors"])))
    return 1 if failed and not done else 0
