"""`calibrate`: thresholds and a model learnt from designers' accept/reject labels of videos, stored, applied as
rule labels that rank below every person's label.

The workspace's designer labels are a known function of one metric: alice rejects a video iff its MotionX is
below 0.3. Its other features (MotionX's trace components, AesScore on some videos only) are seeded noise."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from curation.calibrate import apply, calibrate, training_data
from curation.calibrate_fit import (MetricModel, direction_curve, logistic_newton, operating_point, rank_auc,
                                    stratified_folds)
from curation.cli import main
from curation.current import current_keys
from storage import Workspace, calibrations, labels, metric_results, videos

REPO = Path(__file__).resolve().parents[2]
CUT = 0.3


@pytest.fixture(autouse=True)
def _no_gpu_probe(monkeypatch):
    # the metric keys do not depend on the device; naming it spares each process the torch import of the probe
    monkeypatch.setenv("ADVFX_DEVICE", "cpu")


def _add_video(ws: Workspace, n: int) -> int:
    vid, _ = videos.add_video(ws, {"sha256": f"{n:064x}", "path": f"/nowhere/v{n}.mp4", "bytes": 1})
    return vid


def _score(ws: Workspace, keys: dict, vid: int, metric: str, value: float, trace: dict | None = None,
           triple_id: int = 0) -> None:
    k = keys[metric]
    metric_results.put_result(ws, metric=metric, version=k["version"], params_hash=k["params_hash"], video_id=vid,
                              triple_id=triple_id, value=value, status="ok", trace=trace)


def _build(root: Path, motion: list[float], labelled: int) -> dict:
    """Videos with these MotionX values; the first `labelled` labelled by alice (reject iff MotionX < CUT)."""
    rng = np.random.default_rng(7)
    out = {"labelled": {}, "unlabelled": {}}
    with Workspace.open(root) as ws:
        keys = current_keys(ws)
        for n, mx in enumerate(motion):
            vid = _add_video(ws, n)
            _score(ws, keys, vid, "motionx", mx, {"A_norm": float(rng.uniform()), "S_norm": float(rng.uniform()),
                                                  "R": float(rng.uniform()), "E": list(range(20))})
            if n % 4:                        # AesScore is missing on every fourth video: imputed, with an indicator
                _score(ws, keys, vid, "aesscore", float(rng.uniform()))
            if n < labelled:
                labels.append_event(ws, item_kind="video", item_id=vid, value="reject" if mx < CUT else "accept",
                                     annotator="alice")
                out["labelled"][vid] = mx
            else:
                out["unlabelled"][vid] = mx
    return out


@pytest.fixture(scope="module")
def _forty_template(tmp_path_factory):
    motion = list(np.random.default_rng(3).permutation(np.linspace(0.02, 0.98, 40)).round(4))
    extra = [0.05, 0.1, 0.12, 0.15, 0.2, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
    root = tmp_path_factory.mktemp("calibrate") / "ws"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADVFX_DEVICE", "cpu")
        return root, _build(root, motion + extra, labelled=40)


@pytest.fixture()
def forty(tmp_path, _forty_template):
    """40 labelled videos (MotionX spread over [0.02, 0.98], 12 below the cut: 0.02 + 11 x 0.96/39 = 0.291) and
    12 unlabelled ones; a fresh copy per test."""
    root, info = _forty_template
    shutil.copytree(root, tmp_path / "ws")
    return tmp_path / "ws", info


def test_curves_and_operating_points_by_hand():
    s = np.array([0.1, 0.2, 0.2, 0.4, 0.9, np.nan])
    y = np.array([0, 0, 1, 0, 1, 0])
    # accepted 0.2 beats rejected 0.1, ties 0.2, loses to 0.4; accepted 0.9 beats all three: (1 + .5 + 0 + 3) / 6
    assert rank_auc(s[:5], y[:5]) == pytest.approx(4.5 / 6)
    rej = direction_curve(s, y, "reject")
    # one point per value holding a reject: s < 0.15 (1 of 1), s < 0.3 (2 of 3), s < 0.65 (3 of 4)
    assert rej["threshold"] == pytest.approx([0.15, 0.3, 0.65])
    assert rej["precision"] == pytest.approx([1, 2 / 3, 3 / 4]) and rej["recall"] == pytest.approx([.25, .5, .75])
    assert rej["coverage"] == pytest.approx([1 / 6, 3 / 6, 4 / 6])
    assert operating_point(rej, 0.9)["threshold"] == pytest.approx(0.15)
    assert operating_point(rej, 0.7)["threshold"] == pytest.approx(0.65)
    acc = direction_curve(s, y, "accept")
    # s >= 0.65 (1 of 1), s >= 0.15 (2 of 4)
    assert acc["threshold"] == pytest.approx([0.15, 0.65]) and acc["precision"] == pytest.approx([0.5, 1.0])
    assert operating_point(direction_curve(s, 1 - y, "reject"), 0.99)["threshold"] is None


def test_the_model_minimises_balanced_l2_logistic_loss_and_stores_whole():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(200, 4))
    y = (Z[:, 0] + rng.normal(0, 0.7, 200) > 0.8).astype(int)
    coef, intercept = logistic_newton(Z, y, 1.0)
    # the optimum of 0.5 |coef|^2 + sum_i w_i logloss_i, w = n / (2 n_class) (sklearn's "balanced"): zero gradient
    w = np.where(y == 1, 200 / (2 * y.sum()), 200 / (2 * (200 - y.sum())))
    p = 1 / (1 + np.exp(-(Z @ coef + intercept)))
    assert np.abs(coef + Z.T @ (w * (p - y))).max() < 1e-6 and abs((w * (p - y)).sum()) < 1e-6
    X = rng.normal(size=(60, 3))
    X[rng.uniform(size=X.shape) < 0.2] = np.nan
    y = (np.nan_to_num(X[:, 0]) > 0).astype(int)
    m = MetricModel().fit(X, y)
    again = MetricModel.from_dict(json.loads(json.dumps(m.to_dict())))
    assert np.array_equal(again.predict_proba(X), m.predict_proba(X))
    assert len(m.coef_) == 3 + 3                              # every column had a missing value: three indicators
    # 12 rejects and 28 accepts in 5 folds: 2 or 3 rejects and 5 or 6 accepts in each, 8 in all
    labels_ = np.array([0] * 12 + [1] * 28)
    folds = stratified_folds(labels_, 5, seed=0)
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(40))
    assert all(len(te) == 8 and (labels_[te] == 0).sum() in (2, 3) for _, te in folds)


def test_bulk_results_are_stored_as_put_result_stores_them(workspace):
    rows = [{"metric": "aesscore", "version": "1", "params_hash": "h", "video_id": v, "value": v / 10,
             "status": "ok", "trace": {"raw": [v]}} for v in (1, 2)]
    metric_results.put_results(workspace, rows)
    metric_results.put_results(workspace, [rows[1] | {"status": "error", "reason": "timeout"}])   # replaces
    got = [metric_results.get_result(workspace, metric="aesscore", version="1", params_hash="h", video_id=v,
                                     with_trace=True) for v in (1, 2)]
    assert (got[0]["value"], got[0]["status"], got[0]["trace"]) == (0.1, "ok", {"raw": [1]})
    assert (got[1]["value"], got[1]["status"], got[1]["reason"]) == (None, "error", "timeout")


def test_features_are_the_current_values_and_trace_components_averaged_over_triples(workspace):
    keys = current_keys(workspace)
    vid = _add_video(workspace, 1)
    _score(workspace, keys, vid, "tsscore", 0.2, {"segments": [{"stab": 1.0, "clarity": 0.5, "cover": 0.2}]}, 1)
    _score(workspace, keys, vid, "tsscore", 0.6, {"segments": [{"stab": 0.5, "clarity": 0.3, "cover": 0.4},
                                                               {"stab": 0.0, "clarity": 0.1, "cover": 0.6}]}, 2)
    # a stale version of MotionX is not current, so it is no feature
    metric_results.put_result(workspace, metric="motionx", version="0.0-old", params_hash="x", video_id=vid,
                              value=0.9, status="ok", trace={"A_norm": 0.9})
    cols = metric_results.video_features(workspace, [k["key"] for k in keys.values()])
    assert list(cols["video_id"]) == [vid] and list(cols["metric"]) == ["tsscore"]
    # triple 1: stab 1.0; triple 2: mean(0.5, 0.0) = 0.25; the video: mean over its triples
    got = {k: float(v[0]) for k, v in cols.items() if k not in ("video_id", "metric") and not np.isnan(v[0])}
    assert got == pytest.approx({"value": 0.4, "tsscore.stab": 0.625, "tsscore.clarity": 0.35, "tsscore.cover": 0.35})


def test_the_motionx_threshold_separates_the_labels_and_auto_reject_is_exact(forty):
    root, info = forty
    rejected = [mx for mx in info["labelled"].values() if mx < CUT]
    accepted = [mx for mx in info["labelled"].values() if mx >= CUT]
    with Workspace.open(root) as ws:
        cal = calibrate(ws)
        stored = calibrations.get(ws)
    t = cal["thresholds"]["motionx"]
    assert t["higher_is_better"] and max(rejected) < t["threshold"] < min(accepted)
    assert t["balanced_accuracy"] == 1.0
    op = t["reject"]["operating_point"]
    assert op["precision"] == 1.0 and op["recall"] == 1.0 and op["n"] == len(rejected)
    assert max(rejected) < op["threshold"] < min(accepted)
    assert t["accept"]["operating_point"]["precision"] == 1.0
    assert cal["cv_metrics"]["folds"] == 5 and cal["label_counts"] == {"accept": 28, "reject": 12, "no_metrics": 0}
    # what was stored is what was returned
    assert stored["id"] == cal["id"] and stored["thresholds"]["motionx"]["threshold"] == t["threshold"]
    assert stored["model"]["features"] == ["motionx", "motionx.amplitude", "motionx.smoothness",
                                           "motionx.activation", "aesscore"]
    assert "aesscore (missing)" in stored["model"]["coefficients"]


def test_json_output_has_thresholds_curves_and_operating_points(forty, capsys):
    root, _ = forty
    assert main(["calibrate", "--workspace", str(root), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["operating_points"]) == {"motionx", "motionx.amplitude", "motionx.smoothness",
                                            "motionx.activation", "aesscore", "model"}
    # one point per rejected video, in MotionX order; the last catches all 12 and nothing else
    curve = out["thresholds"]["motionx"]["reject"]["curve"]
    assert curve["n"] == list(range(1, 13)) and curve["precision"] == [1.0] * 12
    assert curve["coverage"][-1] == pytest.approx(12 / 40) and curve["recall"][-1] == 1.0
    assert out["operating_points"]["motionx"]["reject"]["precision"] == 1.0


def test_too_few_labels_is_a_json_error_with_what_is_needed(tmp_path):
    info = _build(tmp_path / "ws", [0.1, 0.6, 0.7], labelled=3)
    with Workspace.open(tmp_path / "ws") as ws:
        # a rejected video without metric values does not count
        vid = _add_video(ws, 99)
        labels.append_event(ws, item_kind="video", item_id=vid, value="reject", annotator="alice")
    assert len(info["labelled"]) == 3
    proc = subprocess.run([sys.executable, "-m", "curation", "calibrate", "--workspace", str(tmp_path / "ws"),
                           "--json"], capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO), "ADVFX_DEVICE": "cpu"})
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    out = json.loads(proc.stdout)
    assert out["needed"] == {"accept": 1, "reject": 2}
    assert out["have"] == {"accept": 2, "reject": 1, "no_metrics": 1}
    assert "error" in out


def test_apply_labels_only_unlabelled_videos_and_one_undo_takes_all_back(forty, capsys):
    root, info = forty
    with Workspace.open(root) as ws:
        cal = calibrate(ws)
        before = labels.last_event_id(ws)
        dry = apply(ws, dry_run=True)
        assert labels.last_event_id(ws) == before            # a dry run writes nothing
    assert main(["calibrate", "--workspace", str(root), "--apply", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert (rep["reject"], rep["accept"]) == (dry["reject"], dry["accept"])
    with Workspace.open(root) as ws:
        rule = [r for r in labels.current_labels(ws, "video") if r["annotator"] == f"rule:{cal['id']}"]
        assert len(rule) == rep["written"] == rep["reject"] + rep["accept"] > 0
        assert {r["item_id"] for r in rule} <= set(info["unlabelled"])
        for r in rule:                                       # the rule agrees with the designer's cut
            assert r["value"] == ("reject" if info["unlabelled"][r["item_id"]] < CUT else "accept")
        # the people's labels are untouched
        for vid in info["labelled"]:
            assert labels.resolved_label(ws, "video", vid)["annotators"] == ["alice"]
    assert main(["calibrate", "--workspace", str(root), "--undo", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["undone"] == rep["written"]
    with Workspace.open(root) as ws:
        assert not [r for r in labels.current_labels(ws, "video") if r["annotator"].startswith("rule:")]
        assert set(labels.resolved_labels(ws, "video")) == set(info["labelled"])


def test_a_person_labelled_before_a_rule_still_decides(workspace):
    a, b = _add_video(workspace, 1), _add_video(workspace, 2)
    labels.append_event(workspace, item_kind="video", item_id=a, value="accept", annotator="alice")
    labels.append_event(workspace, item_kind="video", item_id=a, value="reject", annotator="rule:1")
    labels.append_event(workspace, item_kind="video", item_id=a, value="reject", annotator="rule:2")
    got = labels.resolved_label(workspace, "video", a)
    assert (got["label"], got["by_rule"], got["annotators"], got["n_neg"]) == ("accept", False, ["alice"], 0)
    # with no person's vote, the newest rule label decides, even against an older majority of rules
    for who, value in (("rule:1", "reject"), ("rule:2", "reject"), ("rule:3", "accept")):
        labels.append_event(workspace, item_kind="video", item_id=b, value=value, annotator=who)
    got = labels.resolved_label(workspace, "video", b)
    assert (got["label"], got["by_rule"], got["annotators"]) == ("accept", True, ["rule:3"])


def test_rule_labels_are_not_training_labels(forty):
    root, info = forty
    with Workspace.open(root) as ws:
        first = calibrate(ws)
        rep = apply(ws)
        assert rep["written"] > 0
        data = training_data(ws)
        second = calibrate(ws)
    assert sorted(data["ids"]) == sorted(info["labelled"])
    assert second["n_labels"] == first["n_labels"] == 40 and second["label_hash"] == first["label_hash"]


def test_rule_decisions_are_left_out_of_designer_agreement():
    """A rule's accept/reject is the metrics' own verdict: counting it as a designer's would make the agreement
    report circular. Two human decisions that MotionX orders perfectly, two rule decisions that it orders
    backwards: with the rule's left out the ROC-AUC is 1.0, not 0.5."""
    from curation.benchmark import designer_agreement

    def rec(decision: int, value: float, by_rule: bool, tid: int = 0) -> dict:
        return {"triple_id": tid, "decision": decision, "decided_by_rule": by_rule, "model": "m",
                "metrics": {"motionx": {"status": "ok", "value": value}}}

    records = [rec(1, 0.9, False), rec(0, 0.1, False), rec(1, 0.2, True), rec(0, 0.8, True)]
    out = designer_agreement(records, ["motionx"], n_boot=10, seed=0)
    assert out["labelled_videos"] == 2 and out["rule_decided_left_out"] == 2
    assert out["metrics"]["motionx"]["roc_auc"]["auc"] == 1.0 and out["metrics"]["motionx"]["roc_auc"]["n"] == 2


def test_the_agreement_report_lists_the_top_disagreements_per_metric():
    """Accepts at 0.2 and 0.8, rejects at 0.9 and 0.1: the reject the metric ranks highest (triple 3, mid-rank
    1.0) and the accept it ranks low (triple 1, 1 - 1/3) disagree; the other two agree with the designer."""
    from curation.benchmark import _agreement_md, designer_agreement

    records = [{"triple_id": t, "decision": y, "model": "m", "metrics": {"motionx": {"status": "ok", "value": v}}}
               for t, y, v in ((1, 1, 0.2), (2, 1, 0.8), (3, 0, 0.9), (4, 0, 0.1))]
    out = designer_agreement(records, ["motionx"], n_boot=10, seed=0)
    top = out["metrics"]["motionx"]["disagreements"]
    assert [(d["triple_id"], d["decision"]) for d in top] == [(3, "reject"), (1, "accept")]
    assert [d["disagreement"] for d in top] == [1.0, 0.667]
    assert "| MotionXScore | 3 | reject | 0.900 | 1.00 |" in _agreement_md(out)


def test_calibrate_stores_p_accept_for_every_scored_video_out_of_fold_for_its_training_videos(forty):
    """Every one of the 52 scored videos gets a P(accept): the 40 it learnt from out of fold, the 12 others by the
    final model, which sides them with the designer's cut at MotionX 0.3; apply's lists carry those P."""
    root, info = forty
    with Workspace.open(root) as ws:
        cal = calibrate(ws)
        got = calibrations.scores(ws, cal["id"])
        dry = apply(ws, dry_run=True)
    assert cal["n_scores"] == 52 and set(got) == set(info["labelled"]) | set(info["unlabelled"])
    assert {v for v, s in got.items() if s["out_of_fold"]} == set(info["labelled"])
    assert {v: got[v]["p_accept"] >= 0.5 for v in info["unlabelled"]} == \
        {v: mx >= CUT for v, mx in info["unlabelled"].items()}
    listed = [e for d in ("reject", "accept") for e in dry["videos"][d]]
    assert len(listed) == dry["reject"] + dry["accept"] > 0
    assert all(e["p_accept"] == pytest.approx(got[e["video_id"]]["p_accept"]) for e in listed)
    assert [e["p_accept"] for e in dry["videos"]["reject"]] == sorted(e["p_accept"] for e in dry["videos"]["reject"])
