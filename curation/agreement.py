"""Metric-designer agreement and the user study's Bradley-Terry ranking.

- For each metric, the ROC-AUC of the metric value predicting a designer's "accept" over the labelled
  (case, model) videos, with a percentile bootstrap confidence interval (resampling videos).
- Spearman and Kendall correlation between per-model metric means and per-model accept rates, with a
  bootstrap CI that resamples the labelled videos within each model (models are the units of the
  correlation; with fewer than 3 models it is undefined and reported as such).
- Pairwise preferences (prompt following, advertising quality): per model wins / losses / ties, preference
  rate = (wins + ties / 2) / judgements, and a Bradley-Terry fit (Hunter's MM algorithm, a tie counted as half
  a win for each side, with a weak prior of one virtual tie against an average opponent so undefeated or
  winless models keep finite strengths).
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Sequence

import numpy as np


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """Probability that a random positive scores above a random negative (ties count half); None without
    both classes."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=int)
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    from scipy.stats import rankdata

    r = rankdata(s)
    return float((r[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _ci(samples: list[float], level: float = 0.95) -> list[float] | None:
    vals = [v for v in samples if v is not None and not math.isnan(v)]
    if len(vals) < 10:
        return None
    lo, hi = np.percentile(vals, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return [float(lo), float(hi)]


def auc_with_ci(scores: Sequence[float], labels: Sequence[int], *, n_boot: int = 1000, seed: int = 0,
                level: float = 0.95) -> dict[str, Any]:
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=int)
    auc = roc_auc(s, y)
    out: dict[str, Any] = {"auc": auc, "n": int(len(y)), "n_accept": int((y == 1).sum()),
                           "n_reject": int((y == 0).sum()), "ci": None}
    if auc is None:
        out["reason"] = "needs both accepted and rejected videos with a value"
        return out
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        boots.append(roc_auc(s[idx], y[idx]))
    out["ci"] = _ci(boots, level)
    out["level"] = level
    return out


def _corr(x: np.ndarray, y: np.ndarray, kind: str) -> float | None:
    from scipy.stats import kendalltau, spearmanr

    if len(x) < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return None
    r = spearmanr(x, y)[0] if kind == "spearman" else kendalltau(x, y)[0]
    return None if r is None or math.isnan(r) else float(r)


def model_level_correlation(per_model: dict[str, tuple[Sequence[float], Sequence[int]]], *, n_boot: int = 1000,
                            seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """per_model: model -> (metric values of its labelled videos, their accept labels 1/0). Spearman and
    Kendall between per-model metric means and per-model accept rates, with bootstrap CIs."""
    models = sorted(m for m, (v, _) in per_model.items() if len(v))
    out: dict[str, Any] = {"models": len(models), "per_model": {}}
    for m in models:
        v, y = per_model[m]
        out["per_model"][m] = {"mean": float(np.mean(v)), "accept_rate": float(np.mean(y)), "n": len(v)}
    if len(models) < 3:
        out.update({"spearman": None, "kendall": None, "spearman_ci": None, "kendall_ci": None,
                    "reason": f"needs labelled videos of at least 3 models (have {len(models)})"})
        return out
    means = np.array([out["per_model"][m]["mean"] for m in models])
    rates = np.array([out["per_model"][m]["accept_rate"] for m in models])
    out["spearman"] = _corr(means, rates, "spearman")
    out["kendall"] = _corr(means, rates, "kendall")
    if out["spearman"] is None:
        out["reason"] = "per-model means or accept rates are all equal"
    rng = np.random.default_rng(seed)
    arrays = {m: (np.asarray(per_model[m][0], float), np.asarray(per_model[m][1], int)) for m in models}
    sp, kd = [], []
    for _ in range(n_boot):
        bm, br = [], []
        for m in models:
            v, y = arrays[m]
            idx = rng.integers(0, len(v), len(v))
            bm.append(v[idx].mean())
            br.append(y[idx].mean())
        bm, br = np.array(bm), np.array(br)
        sp.append(_corr(bm, br, "spearman"))
        kd.append(_corr(bm, br, "kendall"))
    out["spearman_ci"] = _ci(sp, level)
    out["kendall_ci"] = _ci(kd, level)
    out["level"] = level
    return out


# -- pairwise preferences ---------------------------------------------------------------------------
def preference_table(judgements: list[dict[str, Any]], criterion: str) -> dict[str, dict[str, Any]]:
    """judgements: dicts with left_model, right_model and criterion -> 'left' | 'right' | 'tie'."""
    t: dict[str, dict[str, Any]] = defaultdict(lambda: {"wins": 0, "losses": 0, "ties": 0, "n": 0})
    for j in judgements:
        a, b, c = j.get("left_model"), j.get("right_model"), j.get(criterion)
        if not a or not b or a == b or c not in ("left", "right", "tie"):
            continue
        t[a]["n"] += 1
        t[b]["n"] += 1
        if c == "tie":
            t[a]["ties"] += 1
            t[b]["ties"] += 1
        else:
            win, lose = (a, b) if c == "left" else (b, a)
            t[win]["wins"] += 1
            t[lose]["losses"] += 1
    for row in t.values():
        row["preference_rate"] = (row["wins"] + 0.5 * row["ties"]) / row["n"] if row["n"] else None
    return dict(t)


def bradley_terry(judgements: list[dict[str, Any]], criterion: str, *, prior: float = 1.0,
                  iters: int = 2000, tol: float = 1e-10) -> dict[str, float]:
    """Bradley-Terry strengths (normalized to geometric mean 1) by Hunter's MM updates.
    w[i,j] = times i beat j (a tie adds 0.5 to both); `prior` virtual ties against a reference opponent of
    strength 1 regularize models that never lose or never win."""
    models = sorted({j["left_model"] for j in judgements if j.get(criterion) in ("left", "right", "tie")}
                    | {j["right_model"] for j in judgements if j.get(criterion) in ("left", "right", "tie")})
    models = [m for m in models if m]
    if not models:
        return {}
    ix = {m: i for i, m in enumerate(models)}
    k = len(models)
    w = np.zeros((k, k))
    for j in judgements:
        a, b, c = j.get("left_model"), j.get("right_model"), j.get(criterion)
        if not a or not b or a == b or c not in ("left", "right", "tie"):
            continue
        i, jj = ix[a], ix[b]
        if c == "left":
            w[i, jj] += 1
        elif c == "right":
            w[jj, i] += 1
        else:
            w[i, jj] += 0.5
            w[jj, i] += 0.5
    n = w + w.T
    p = np.ones(k)
    wins = w.sum(axis=1) + prior / 2.0
    for _ in range(iters):
        denom = (n / (p[:, None] + p[None, :])).sum(axis=1) + prior / (p + 1.0)
        new = wins / denom
        new /= math.exp(np.log(new).mean())
        if np.max(np.abs(new - p)) < tol:
            p = new
            break
        p = new
    return {m: float(p[ix[m]]) for m in models}


def user_study(judgements: list[dict[str, Any]],
               criteria: Sequence[str] = ("prompt_following", "ad_quality")) -> dict[str, Any]:
    """Per criterion: per-model wins/losses/ties/n, preference rate, Bradley-Terry strength and rank."""
    out: dict[str, Any] = {"judgements": len(judgements), "annotators": len({j.get("annotator") for j in judgements}),
                           "criteria": {}}
    for c in criteria:
        table = preference_table(judgements, c)
        bt = bradley_terry(judgements, c)
        order = sorted(bt, key=lambda m: (-bt[m], m))
        for m in table:
            table[m]["bt_strength"] = bt.get(m)
            table[m]["bt_rank"] = order.index(m) + 1 if m in bt else None
        out["criteria"][c] = {"models": table, "ranking": order,
                              "n": sum(1 for j in judgements if j.get(c) in ("left", "right", "tie"))}
    return out
