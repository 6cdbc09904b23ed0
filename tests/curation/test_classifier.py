"""The quality classifier: training from labels, runs and predictions stored, conflict rule, too few
labels, progress and cancellation, the CLI, and validation on real media."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from curation import classifier as C
from storage import Workspace
from storage import curation_store as cs
from storage.labels import append_event


def test_train_stores_run_model_and_predictions(labelled_demo):
    ws = labelled_demo
    steps: list[tuple[float, str]] = []
    r = C.train(ws, progress=lambda f, m: steps.append((f, m)))
    assert r["n_labels"] == 24 and r["label_counts"]["good"] == 18 and r["label_counts"]["bad"] == 6
    assert r["features"] == "classical-v1"              # no CLIP/DINO weights here: named as such
    assert set(r["compared"]) == {"logreg", "ridge"} and r["estimator"] in r["compared"]
    assert r["pr_auc"] == max(m["pr_auc"] for m in r["compared"].values())
    assert 0.0 <= r["threshold"] <= 1.0 and 0.0 <= r["roc_auc"] <= 1.0
    fr = [f for f, _ in steps]
    assert fr == sorted(fr) and fr[-1] == 1.0 and any("fold" in m for _, m in steps)
    run = cs.get_run(ws, r["run"])
    assert run["label_hash"] and run["label_counts"]["good"] == 18 and run["features"] == "classical-v1"
    cvm = run["cv_metrics"]
    for name in ("logreg", "ridge"):
        m = cvm["estimators"][name]
        for key in ("roc_auc", "pr_auc", "f1", "threshold", "calibration", "confusion", "roc_curve"):
            assert key in m
        assert "brier" in m["calibration"] and "ece" in m["calibration"]
    model_path = Path(run["model_path"])
    assert model_path.exists() and model_path.parent == ws.path("runs")
    side = json.loads(model_path.with_suffix(".json").read_text())
    assert side["run"] == r["run"] and side["features"] == "classical-v1"
    preds = cs.predictions(ws, r["run"])
    assert len(preds) == 24 and all(0.0 <= v <= 1.0 for v in preds.values())
    model, _ = C.load_model(ws)
    from curation.features import feature_matrix, resolve_embedders
    ims = cs.all_images(ws)
    X, _, _ = feature_matrix(ws, np.array([i["id"] for i in ims]), [i["sha256"] for i in ims],
                             resolve_embedders("classical"))
    assert model.predict_proba(X).shape == (24, 2)
    # the embedding cache is reused: a second run computes nothing new
    before = ws.query_one("SELECT count(*) FROM embeddings")[0]
    C.train(ws)
    assert ws.query_one("SELECT count(*) FROM embeddings")[0] == before == 24
    assert len(C.run_history(ws)) == 2


def test_unlabelled_images_get_predictions_and_pseudo_labels_join_training(labelled_demo):
    ws = labelled_demo
    ids = [im["id"] for im in cs.all_images(ws)]
    # undo the labels of four good images: they become unlabelled
    for iid in ids[:2] + ids[3:5]:
        ev = ws.query_one("SELECT event_id FROM current_labels WHERE item_kind = 'image' AND item_id = ?", [iid])
        append_event(ws, item_kind="image", item_id=iid, value="undo", annotator="alice", undoes=ev[0])
    from curation.filters import run_filters
    run_filters(ws, names=("quality", "layout"))
    r = C.train(ws, heuristics=True, pseudo_weight=0.25)
    assert r["n_labels"] == 20 and r["features"] == "classical-v1+heuristics-v1"
    run = cs.get_run(ws, r["run"])
    assert run["cv_metrics"]["pseudo_labels"] == 4 and run["cv_metrics"]["pseudo_weight"] == 0.25
    assert set(cs.predictions(ws, r["run"])) == set(ids)


def test_conflicting_annotators_majority_then_latest(labelled_demo):
    ws = labelled_demo
    iid = cs.all_images(ws)[0]["id"]                     # alice: good
    append_event(ws, item_kind="image", item_id=iid, value="bad", annotator="bob")
    lab = {r["image_id"]: r for r in cs.resolved_image_labels(ws)}[iid]
    assert lab["label"] == "bad" and lab["conflict"] and lab["n_annotators"] == 2   # tie: latest wins
    append_event(ws, item_kind="image", item_id=iid, value="good", annotator="carol")
    lab = {r["image_id"]: r for r in cs.resolved_image_labels(ws)}[iid]
    assert lab["label"] == "good"                                                   # 2 good vs 1 bad
    append_event(ws, item_kind="image", item_id=iid, value="skip", annotator="dave")  # skip never counts
    assert {r["image_id"]: r for r in cs.resolved_image_labels(ws)}[iid]["n_annotators"] == 3


def test_too_few_labels_says_how_many_are_needed(demo_workspace):
    with Workspace.open(demo_workspace) as ws:
        ids = [im["id"] for im in cs.all_images(ws)]
        for iid in ids[:3]:
            append_event(ws, item_kind="image", item_id=iid, value="good", annotator="a")
        with pytest.raises(C.NotEnoughLabels) as e:
            C.train(ws)
        msg = str(e.value)
        assert "have 3 good and 0 bad" in msg and f"at least {C.MIN_PER_CLASS} of each" in msg
        for iid in ids[3:12]:
            append_event(ws, item_kind="image", item_id=iid, value="good", annotator="a")
        with pytest.raises(C.NotEnoughLabels, match="5 more 'bad'"):   # one class only
            C.train(ws)
    out = subprocess.run([sys.executable, "-m", "curation", "train", "--workspace", str(demo_workspace), "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 3 and "12 good and 0 bad" in out.stderr


def test_cancel_between_folds_stores_nothing(labelled_demo):
    ws = labelled_demo
    cancel = threading.Event()

    def progress(frac: float, msg: str) -> None:
        if "fold 2" in msg:
            cancel.set()

    with pytest.raises(C.Cancelled, match="cancelled"):
        C.train(ws, progress=progress, cancel=cancel)
    assert cs.list_runs(ws) == [] and cs.latest_run_id(ws) is None
    job = C.TrainJob(ws).start().wait(120)
    assert job.done and job.error is None and job.result["run"] >= 1 and job.progress[0] == 1.0


def test_train_cli_json(labelled_demo):
    root = labelled_demo.root
    labelled_demo.close()
    out = subprocess.run([sys.executable, "-m", "curation", "train", "--workspace", str(root), "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    for key in ("run", "n_labels", "roc_auc", "pr_auc", "features"):
        assert key in r
    assert r["n_labels"] == 24 and r["features"] == "classical-v1"


def test_threshold_and_metrics_helpers():
    y = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.6, 0.4, 0.7, 0.8, 0.9, 0.95])
    thr, f1 = C.best_threshold(y, p)
    rep = C.cv_report(y, p)
    assert rep["threshold"] == thr and abs(rep["f1"] - f1) < 1e-9
    assert rep["confusion"]["tp"] + rep["confusion"]["fn"] == 5
    assert 0 <= rep["calibration"]["ece"] <= 1


@pytest.mark.field
def test_classical_classifier_beats_chance_on_fieldmedia(fieldmedia, field_manifest, tmp_path):
    """ad_image = good, poor_image = bad (23 vs 11). Measured (bench/results/classifier_validation.md):
    classical-v1 features, stratified 5-fold CV, seeds 0-4: ROC-AUC 0.676 / 0.593 / 0.711 / 0.810 / 0.656,
    mean 0.689 (deterministic). Asserted: mean >= 0.62, i.e. chance (0.5) + a 0.12 margin."""
    from curation.ingest import ingest

    rows = [r for r in field_manifest if r["kind"] in ("ad_image", "poor_image")]
    with Workspace.open(tmp_path / "ws") as ws:
        rep = ingest(ws, [fieldmedia / r["path"] for r in rows])
        assert not rep.failed
        by_path = {Path(im["path"]).name: im["id"] for im in cs.all_images(ws)}
        for r in rows:
            append_event(ws, item_kind="image", item_id=by_path[Path(r["path"]).name],
                         value="good" if r["kind"] == "ad_image" else "bad", annotator="manifest")
        aucs = [C.train(ws, features="classical", seed=s)["roc_auc"] for s in range(5)]
    assert np.mean(aucs) >= 0.5 + 0.12, aucs
