"""python -m curation dedup --workspace W [--hamming 6] [--cosine 0.96] [--json]"""
from __future__ import annotations

import argparse

from storage import Workspace

from ..cli import add_workspace_arg, emit


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..duplicates import COLOUR_MAX, COSINE_MIN, HAMMING_MAX

    p = sub.add_parser("dedup", help="group near-duplicate images (perceptual hash + embedding cosine) into "
                                     "images.dup_group")
    add_workspace_arg(p)
    p.add_argument("--hamming", type=int, default=HAMMING_MAX, help=f"max differing pHash bits (default {HAMMING_MAX})")
    p.add_argument("--colour", type=float, default=COLOUR_MAX,
                   help=f"max mean CIELAB difference of the 4x4 colour grids (default {COLOUR_MAX})")
    p.add_argument("--cosine", type=float, default=COSINE_MIN,
                   help=f"min CLIP/DINO cosine (default {COSINE_MIN}); 0 disables")
    p.add_argument("--cosine-model", help="embedding model id to use for cosine (default: CLIP, else DINO)")
    p.add_argument("--show", type=int, default=10, help="groups to list (human output)")
    p.add_argument("--json", action="store_true")
    return p


def run(args: argparse.Namespace) -> int:
    from storage import curation_store as cs

    from ..duplicates import dedup

    with Workspace.open(args.workspace, create=False) as ws:
        rep = dedup(ws, hamming_max=args.hamming, colour_max=args.colour,
                    cosine_min=args.cosine if args.cosine > 0 else None, cosine_model=args.cosine_model)
        groups = cs.dup_groups(ws)
    rep["group_list"] = [{"group_id": g["group_id"], "n": g["n"], "paths": g["paths"]} for g in groups]

    def human(r: dict) -> str:
        lines = [f"{r['images']} images: {r['groups']} near-duplicate groups holding {r['images_in_groups']} images "
                 f"(pHash pairs {r['phash_pairs']}, cosine pairs {r['cosine_pairs']}"
                 f"{' on ' + r['cosine_model'] if r['cosine_model'] else ''}; {r['seconds']} s)"]
        if r.get("cosine_note"):
            lines.append(f"  cosine: {r['cosine_note']}")
        for g in r["group_list"][:args.show]:
            lines.append(f"  group {g['group_id']} ({g['n']}): " + ", ".join(p.split('/')[-1] for p in g["paths"][:6]))
        lines += [f"  ERROR {e['path']}: {e['error']}" for e in r["errors"]]
        return "\n".join(lines)

    emit(args, rep, human)
    return 0
