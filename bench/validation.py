"""Known-answer validation of the metrics (issue 18, §4): controlled cases whose order is known, scored by the
real metric code with each metric's frozen default config, on generated demo media and on the field media.

    .venv/bin/python bench/validation.py [--fieldmedia ../shared/fieldmedia] [--quick]

Writes bench/results/validation.md and validation.json (with --quick: validation_quick.{md,json}). --quick
renders the demo scenes at 192 px and samples 4 frames for TSScore and ProductScore (the test's subset,
tests/reports/test_validation.py); the full run uses the demo's 384 px and the metrics' 32 frames.

Cases (each a video written to MP4 and decoded by `media.decode`, then the metric's own `run`):
- MotionX: static < slow < fast. Slow is a constant-velocity motion (the demo's diagonal pan, its product
  drift; field clips described as slow or low-motion); fast is the same video with every SPEEDUP-th frame
  kept at the same declared fps, so the motion per second is SPEEDUP times larger while its path, and with
  it the smoothness, stays the same. A periodic sway would not do: subsampled, it changes direction
  SPEEDUP times as often per analysis sample (8 fps) and scores as jerky. Static: the demo's static scene
  (±1 level noise) or the field clip's first frame repeated with that noise; an exact repeat is its own row.
- TSScore: stable > flicker > deform > vanish (the demo's text_stays, text_flicker, text_deform; vanish:
  text_stays with the text gone after the first quarter); the same scene without text -> n/a. References:
  the ad image (the triple's source image) and, in another set, the video's own first frame (no source).
- ProductScore: same > recoloured > swapped > missing (demo smooth, colour_change, product_swap; missing:
  the product gone after the first frame), against the product cut out of the ad (RGBA); field: the
  pour-honey input image above unrelated references.
- Spurious text (TSScore's `spurious`): none on the text-free field videos, found when a watermark is drawn
  on every frame (bench/spurious_calibration.py's "SAMPLE" at its place; each video against its own clean
  first frame, as the calibration does; the pour-honey clip also against its source image, with the mark
  also top left, off its product).
Constants of the metrics (ProductScore's fitted (lo, hi) per embedder, thresholds) are read from the modules at
run time; each ProductScore row names its norm and where it came from (the trace's norm_source).
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curation import demo  # noqa: E402
from media.decode import decode_video  # noqa: E402
from media.encode import write_mp4  # noqa: E402
from metrics import motionx as mx  # noqa: E402
from metrics import productscore as ps  # noqa: E402
from metrics import tsscore as ts  # noqa: E402
from metrics.registry import Case, get_spec  # noqa: E402

SEED = 0
QUICK_SIZE, QUICK_FRAMES = 192, 4   # --quick and the test: demo scenes at 192 px, 4 sampled frames (OCR ~1 s a frame)
SPEEDUP = 3            # fast = every 3rd frame at the same declared fps: 3x the motion per second
TEXT_IDX = 12          # "Glow cream": headline GLOW UP, tagline "24h hydration"
PRODUCT_IDX = 4        # "Trail ball", as tests/metrics/test_productscore.py
MOTION_BEHAVIOURS = ("diagonal_pan", "product_drift")   # constant-velocity motions of the demo
# field clips whose manifest calls their motion slow or low (a clip already at MotionX's amplitude cap, such
# as the SUV tracking shot, has no room for "fast" to score higher: its order would not be known)
# (the first, the shortest, is --quick's)
FIELD_MOTION = ("videos_generated/dynamicrafter_pour_honey.mp4", "videos_generated/cogvideox2b_toy_ship.mp4",
                "videos_generated/dynamicrafter_bloom2.mp4", "videos_generated/cogvideox2b_face_closeup_nearstatic.mp4",
                "videos_other/sam2_coffee_pour.mp4")
HONEY_VIDEO = "videos_generated/dynamicrafter_pour_honey.mp4"
HONEY_IMAGE = "images_other/dynamicrafter_pour_honey_input.png"
# field clips whose scene itself shows text (MANIFEST.tsv: the black tee is filmed in front of a RANDY'S DONUTS
# sign): not text-free, so TSScore against their first frame follows the sign, and n/a would be wrong there
TEXT_IN_SCENE = ("opens2v_faceobj_14_black_tee",)
WRONG_REFS = ("images_ad/postermaker_product_cream_jar_rgba.png", "images_other/opens2v_gpt_tshirt_subject.png")
TSHIRT_PAIR = ("videos_other/opens2v_stock_source_clip.mp4", "images_other/opens2v_gpt_tshirt_subject.png")


@dataclass
class Result:
    metric: str
    set: str               # the ordering (or group) the case belongs to
    case: str
    media: str
    value: float | None
    status: str
    backend: str | None
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


# -- media ------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=32)
def _render(idx: int, behaviour: str, size: int) -> tuple[np.ndarray, ...]:
    return tuple(demo.render_video_frames(idx, behaviour, SEED, size))


def demo_frames(idx: int, behaviour: str, size: int) -> list[np.ndarray]:
    """The demo's frames of one behaviour (a fresh list of copies: callers edit them)."""
    return [f.copy() for f in _render(idx, behaviour, size)]


def _background(idx: int, size: int) -> np.ndarray:
    # the scene's background exactly as the demo draws it (same generator seed)
    return np.asarray(demo._background(np.random.default_rng(SEED * 1000 + idx), idx, size))


def remove_text(frame: np.ndarray, idx: int, size: int) -> np.ndarray:
    """The frame with the demo's text layer replaced by the background under it (the text lies above and
    below the product, never on it, so the product is untouched)."""
    import cv2

    alpha = np.asarray(demo._text_layer(idx, size, False))[..., 3] > 0
    alpha = cv2.dilate(alpha.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    out = frame.copy()
    out[alpha] = _background(idx, size)[alpha]
    return out


def without_product(idx: int, size: int) -> np.ndarray:
    """The demo scene with its text but without the product."""
    im = Image.fromarray(_background(idx, size))
    demo._draw_text(im, idx)
    return np.asarray(im)


def write_video(frames: list[np.ndarray], fps: float, path: Path) -> Path:
    write_mp4(path, frames, fps)
    return path


def noisy_repeat(frame: np.ndarray, n: int, seed: int = 0) -> list[np.ndarray]:
    """The frame repeated n times with ±1 level noise, as the demo's static scene (a camera's or encoder's
    noise; the exact repeat is its own row, and bit-identical frames are n/a for MotionX: one picture)."""
    rng = np.random.default_rng(seed)
    return [np.clip(frame.astype(np.int16) + rng.integers(-1, 2, frame.shape), 0, 255).astype(np.uint8)
            for _ in range(n)]


# -- case builders ----------------------------------------------------------------------------------
def motion_cases(frames: list[np.ndarray], fps: float, static: list[np.ndarray] | None = None
                 ) -> dict[str, tuple[list[np.ndarray], float]]:
    """static / slow / fast (and the exact repeat) from one video's frames: name -> (frames, fps)."""
    return {"static": (static if static is not None else noisy_repeat(frames[0], len(frames)), fps),
            "slow": (frames, fps), "fast": (frames[::SPEEDUP], fps),
            "static, exact repeat (H.264)": ([frames[0]] * len(frames), fps)}


def demo_motion_cases(behaviour: str, size: int) -> dict[str, tuple[list[np.ndarray], float]]:
    return motion_cases(demo_frames(PRODUCT_IDX, behaviour, size), demo.FPS,
                        static=demo_frames(PRODUCT_IDX, "static", size))


def text_cases(size: int) -> dict[str, list[np.ndarray]]:
    """stable / flicker / deform / vanish / text-free frames of the text scene."""
    stable = demo_frames(TEXT_IDX, "text_stays", size)
    cut = len(stable) // 4
    return {"stable": stable, "flicker": demo_frames(TEXT_IDX, "text_flicker", size),
            "deform": demo_frames(TEXT_IDX, "text_deform", size),
            "vanish": stable[:cut] + [remove_text(f, TEXT_IDX, size) for f in stable[cut:]],
            "text-free": [remove_text(f, TEXT_IDX, size) for f in stable]}


def text_reference(size: int, text: bool = True) -> np.ndarray:
    """The ad (source image) of the text scene, with or without its text."""
    im = np.asarray(demo.render_ad(TEXT_IDX, SEED, size)[0])
    return im if text else remove_text(im, TEXT_IDX, size)


def product_cases(size: int, extra: bool = False) -> dict[str, list[np.ndarray]]:
    """same / recoloured / swapped / missing frames of the product scene (extra: the recolour from halfway,
    the swap's time span, to tell a recolour's weight from its duration)."""
    same = demo_frames(PRODUCT_IDX, "smooth", size)
    gone = without_product(PRODUCT_IDX, size)
    out = {"same": same, "recoloured": demo_frames(PRODUCT_IDX, "colour_change", size),
           "swapped": demo_frames(PRODUCT_IDX, "product_swap", size),
           "missing": [same[0]] + [gone.copy() for _ in same[1:]]}
    if extra:
        still, recol = demo_frames(PRODUCT_IDX, "static", size), out["recoloured"]
        half = len(still) // 2
        out["recoloured from halfway"] = still[:half] + recol[half:]
    return out


def product_cutout(size: int) -> np.ndarray:
    """The product cut out of the ad: RGBA, alpha = the demo's product mask (a catalogue's product image)."""
    im, mask = demo.render_ad(PRODUCT_IDX, SEED, size)
    return np.dstack([np.asarray(im), np.asarray(mask)])


# where the mark goes (left, top as fractions of the frame): bench/spurious_calibration.py's place, and the
# top-left corner, off the product of the pour-honey clip (TSScore blanks the product before its OCR: a mark
# drawn over the product is the product's printing to it, and is not read)
MARK_AT = {"bottom right": (0.62, 0.86), "top left": (0.03, 0.04)}


def watermark(frames: list[np.ndarray], where: str = "bottom right", text: str = "SAMPLE") -> list[np.ndarray]:
    """The calibration's "SAMPLE" mark (bench/spurious_calibration.py: same font, size and stroke) on every
    frame, at MARK_AT[where]."""
    from PIL import ImageDraw

    from media.overlay_draw import label_font

    x, y = MARK_AT[where]
    out = []
    for f in frames:
        im = Image.fromarray(f)
        h, w = f.shape[:2]
        ImageDraw.Draw(im).text((w * x, h * y), text, font=label_font(max(14, h // 14)), fill=(245, 245, 245),
                                stroke_width=2, stroke_fill=(20, 20, 20))
        out.append(np.asarray(im))
    return out


# -- scoring ----------------------------------------------------------------------------------------
def _guard(fn):
    """A metric that raises is an error result, as in scoring: one broken case does not end the run."""
    @functools.wraps(fn)
    def run(*a, **kw):
        try:
            return fn(*a, **kw)
        except Exception as exc:
            from metrics.config import MetricOutput
            return MetricOutput.error(f"{type(exc).__name__}: {exc}")
    return run


@_guard
def score_motionx(path: Path) -> Any:
    cfg = mx.MotionXConfig()
    return mx.run(decode_video(path, mx.requests(cfg)), Case(), cfg)


@_guard
def score_identical(path: Path) -> Any:
    """MotionX of the video's first decoded frame repeated bit for bit (what no encoder delivers, but a
    still exported losslessly would): one distinct picture."""
    from media.decode import SampledFrames

    cfg = mx.MotionXConfig()
    s = decode_video(path, mx.requests(cfg)).get(cfg.request())
    n = len(s.frames)
    return mx.compute(SampledFrames(s.request, np.arange(n), np.arange(n) / s.fps, [s.frames[0]] * n,
                                    s.source_size, n, s.fps, s.nominal_fps), cfg)


@_guard
def score_tsscore(path: Path, image: str | Path | None, frames: int | None = None) -> Any:
    cfg = ts.TSConfig() if frames is None else ts.TSConfig(target_frames=frames)
    return ts.run(decode_video(path, ts.requests(cfg)), Case(image_path=str(image) if image else None), cfg)


@_guard
def score_productscore(path: Path, image: str | Path, frames: int | None = None) -> Any:
    cfg = ps.ProductConfig() if frames is None else ps.ProductConfig(n_frames=frames)
    return ps.run(decode_video(path, ps.requests(cfg)), Case(image_path=str(image)), cfg)


def spurious_pair(path: Path, frames: list[np.ndarray], fps: float, ref: Path, tmp: Path,
                  n: int | None = None, where: tuple[str, ...] = ("bottom right",)) -> dict[str, Any]:
    """TSScore of a clip and of the clip with the watermark drawn on every frame (at each place of `where`),
    against `ref`: {"clean": out, "watermark <where>": out}."""
    out = {"clean": score_tsscore(path, ref, n)}
    for at in where:
        marked = write_video(watermark(frames, at), fps, tmp / f"{path.stem}_wm_{at.replace(' ', '_')}.mp4")
        out[f"watermark {at}"] = score_tsscore(marked, ref, n)
    return out


def save_png(arr: np.ndarray, path: Path) -> Path:
    Image.fromarray(arr).save(path)
    return path


def detail(metric: str, out: Any) -> dict[str, Any]:
    """The few trace numbers that explain a score."""
    tr = out.trace or {}
    if metric == "motionx":
        return {k: tr.get(k) for k in ("A_norm", "S_norm", "R")}
    if metric == "tsscore":
        return {"segments": [f"{s['ref_text']}: stab {s['stab']:.2f} clar {s['clarity']:.2f} cover "
                             f"{s['cover']:.2f}" for s in tr.get("segments") or []],
                "missing_refs": len(tr.get("missing_refs") or []), "spurious": tr.get("spurious_texts") or []}
    if metric == "productscore":
        return {"cos_mean": tr.get("cos_mean"), "present": tr.get("present_ratio"), "norm": tr.get("norm"),
                "norm_source": tr.get("norm_source")}
    return {}


def result(metric: str, set_: str, case: str, media: str, out: Any) -> Result:
    return Result(metric, set_, case, media, out.value, out.status, out.backend, out.reason, detail(metric, out))


# -- orderings --------------------------------------------------------------------------------------
def check_order(results: list[Result], metric: str, set_: str, names: list[str], desc: bool = True) -> dict:
    """PASS when the named cases of one set score strictly in that order (all with status ok)."""
    by = {r.case: r for r in results if r.metric == metric and r.set == set_}
    got = [by.get(n) for n in names]
    sym = " > " if desc else " < "
    label = sym.join(names)
    if any(r is None or r.status != "ok" for r in got):
        bad = ", ".join(f"{n}: {r.status if r else 'missing'}" for n, r in zip(names, got) if not r or r.status != "ok")
        return {"metric": metric, "set": set_, "check": label, "verdict": "FAIL", "why": f"no score ({bad})"}
    vals = [r.value for r in got]
    ok = all((a > b) if desc else (a < b) for a, b in zip(vals[:-1], vals[1:]))
    return {"metric": metric, "set": set_, "check": label, "verdict": "PASS" if ok else "FAIL",
            "why": sym.join(f"{v:.3f}" for v in vals)}


def check(metric: str, set_: str, label: str, ok: bool, why: str) -> dict:
    return {"metric": metric, "set": set_, "check": label, "verdict": "PASS" if ok else "FAIL", "why": why}


def checks_of(results: list[Result]) -> list[dict]:
    """Every check the results allow, by set: the orderings, the n/a statuses, the spurious-text report."""
    out: list[dict] = []
    sets = list(dict.fromkeys((r.metric, r.set) for r in results))
    for metric, set_ in sets:
        rows = [r for r in results if r.metric == metric and r.set == set_]
        cases = [r.case for r in rows]
        if metric == "motionx" and "slow" in cases:
            out.append(check_order(results, metric, set_, ["static", "slow", "fast"], desc=False))
        elif metric == "tsscore" and "stable" in cases:
            out.append(check_order(results, metric, set_, ["stable", "flicker", "deform", "vanish"]))
            tf = next(r for r in rows if r.case == "text-free")
            out.append(check(metric, set_, "text-free -> n/a", tf.status == "n/a", f"{tf.status}: {tf.reason}"))
        elif metric == "productscore" and "same" in cases:
            out.append(check_order(results, metric, set_, ["same", "recoloured", "swapped", "missing"]))
        elif metric == "productscore" and "right reference" in cases:
            out += [check_order(results, metric, set_, ["right reference", c]) for c in cases if c.startswith("wrong")]
        elif set_ == "field spurious":
            clean = [r for r in rows if r.case.endswith("clean")]
            marked = [r for r in rows if "watermark" in r.case]
            noisy = [r.case for r in clean if r.detail.get("spurious")]
            out.append(check(metric, set_, "no spurious text on the text-free clips", not noisy,
                             f"{len(clean) - len(noisy)} of {len(clean)} clean" +
                             (f"; reported on {', '.join(noisy)}" if noisy else "")))
            # reported = a spurious text flagged on the marked clip; whether PP-OCR reads the mark's word
            # right depends on what lies under it (on the pour-honey toast it reads '.e', 'le'), so the
            # exact reading is told, not checked
            missed = [r.case for r in marked if not r.detail.get("spurious")]
            misread = [f"{r.case} (read: {', '.join(r.detail.get('spurious') or [])})"
                       for r in marked if r.detail.get("spurious") and "sample" not in r.detail["spurious"]]
            out.append(check(metric, set_, "the watermark reported", not missed,
                             f"on {len(marked) - len(missed)} of {len(marked)}" +
                             (f"; missed on {'; '.join(missed)}" if missed else "") +
                             f"; read as 'sample' on {len(marked) - len(missed) - len(misread)}" +
                             (f"; misread on {'; '.join(misread)}" if misread else "")))
            scene = [r for r in clean if r.case.split(" vs ")[0] in TEXT_IN_SCENE]
            free = [r for r in clean if r not in scene]
            not_na = [f"{r.case} ({r.status} {r.value:.2f})" if r.value is not None else f"{r.case} ({r.status})"
                      for r in free if r.status != "n/a"]
            out.append(check(metric, set_, "text-free clips -> n/a", not not_na,
                             f"{len(free) - len(not_na)} of {len(free)} n/a" +
                             (f"; not: {'; '.join(not_na)}" if not_na else "")))
            if scene:
                unscored = [r.case for r in scene if r.status != "ok"]
                out.append(check(metric, set_, "text in the scene -> scored", not unscored,
                                 "; ".join(f"{r.case}: {r.status}" + (f" {r.value:.2f}" if r.value is not None else "")
                                           for r in scene)))
    return out


# -- the runs ---------------------------------------------------------------------------------------
def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_demo(tmp: Path, size: int, frames: int | None, full: bool) -> list[Result]:
    """Every demo case; `frames` is the TSScore / ProductScore sample count (None: the config's default)."""
    res: list[Result] = []
    media = f"demo {size} px"
    for beh in MOTION_BEHAVIOURS:
        for name, (fr, fps) in demo_motion_cases(beh, size).items():
            path = write_video(fr, fps, tmp / f"m_{beh}_{name.split()[0]}{len(name)}.mp4")
            res.append(result("motionx", f"demo {beh}", name, media, score_motionx(path)))
            if name == "slow" and beh == MOTION_BEHAVIOURS[0]:
                res.append(result("motionx", f"demo {beh}", "static, identical frames (not encoded)", media,
                                  score_identical(path)))

    ad = save_png(text_reference(size), tmp / "text_ad.png")
    plain = save_png(text_reference(size, text=False), tmp / "text_ad_plain.png")
    refs = {"first frame": lambda name: None}
    if full:
        refs = {"ad image": lambda name: plain if name == "text-free" else ad, **refs}
    cases = text_cases(size)
    for ref_name, ref_of in refs.items():
        set_ = f"demo, reference: {ref_name}"
        for name, fr in cases.items():
            t0 = time.perf_counter()
            out = score_tsscore(write_video(fr, demo.FPS, tmp / f"t_{name}.mp4"), ref_of(name), frames)
            res.append(result("tsscore", set_, name, media, out))
            _log(f"tsscore {set_} {name}: {out.status} {out.value} ({time.perf_counter() - t0:.1f} s)")

    cut = save_png(product_cutout(size), tmp / "product_cutout.png")
    for name, fr in product_cases(size, extra=full).items():
        t0 = time.perf_counter()
        out = score_productscore(write_video(fr, demo.FPS, tmp / f"p_{name.replace(' ', '_')}.mp4"), cut, frames)
        res.append(result("productscore", "demo, reference: product cut-out", name, media, out))
        _log(f"productscore {name}: {out.status} {out.value} ({time.perf_counter() - t0:.1f} s)")
    return res


def _decode_rgb(path: Path, max_side: int = 512) -> tuple[list[np.ndarray], float]:
    req = ts.FrameRequest("all", max_side=max_side)
    s = decode_video(path, [req]).get(req)
    return list(s.frames), (s.nominal_fps or s.fps)


def run_field(root: Path, tmp: Path, quick: bool) -> list[Result]:
    res: list[Result] = []
    # MotionX: static < slow < fast on slow clips (re-encoded alike, so "slow" is the clip at the same quality)
    for rel in FIELD_MOTION[:1] if quick else FIELD_MOTION:
        frames, fps = _decode_rgb(root / rel)
        set_ = f"field {Path(rel).stem}"
        for name, (fr, f) in motion_cases(frames, fps).items():
            out = score_motionx(write_video(fr, f, tmp / f"fm_{Path(rel).stem}_{name.split()[0]}{len(name)}.mp4"))
            res.append(result("motionx", set_, name, rel, out))
    # MotionX's range: every field video as it is
    videos = sorted(p for sub in ("videos_generated", "videos_other", "videos_text") for p in (root / sub).glob("*.mp4"))
    if not quick:
        for p in videos:
            rel = f"{p.parent.name}/{p.name}"
            res.append(result("motionx", "field range", p.stem, rel, score_motionx(p)))

    # ProductScore: the pour-honey input image against the video made from it, above unrelated products
    frames_n = QUICK_FRAMES if quick else None
    honey = root / HONEY_VIDEO
    right = score_productscore(honey, root / HONEY_IMAGE, frames_n)
    res.append(result("productscore", "field pour honey", "right reference", f"{HONEY_VIDEO} vs {HONEY_IMAGE}", right))
    for k, wrong in enumerate(WRONG_REFS[:1] if quick else WRONG_REFS):
        out = score_productscore(honey, root / wrong, frames_n)
        res.append(result("productscore", "field pour honey", f"wrong reference {k + 1}",
                          f"{HONEY_VIDEO} vs {wrong}", out))
    if not quick:
        clip, subject = TSHIRT_PAIR
        set_ = "field T-shirt clip"
        res.append(result("productscore", set_, "right reference", f"{clip} vs {subject}",
                          score_productscore(root / clip, root / subject)))
        res.append(result("productscore", set_, "wrong reference 1", f"{clip} vs {WRONG_REFS[0]}",
                          score_productscore(root / clip, root / WRONG_REFS[0])))

    # spurious text: none on the text-free clips, the watermark found. Each clip against its own clean first
    # frame (as bench/spurious_calibration.py); the pour-honey clip also against its real source image
    text_free = [p for p in videos if p.parent.name != "videos_text"]
    jobs = [(root / HONEY_VIDEO, root / HONEY_IMAGE, "source image", tuple(MARK_AT))]
    if not quick:
        jobs += [(p, None, "first frame", ("bottom right",)) for p in text_free]
    for p, ref, ref_name, where in jobs:
        rel = f"{p.parent.name}/{p.name}"
        frames, fps = _decode_rgb(p, 768)
        ref = ref or save_png(frames[0], tmp / f"{p.stem}_first.png")
        for name, out in spurious_pair(p, frames, fps, ref, tmp, frames_n, where).items():
            res.append(result("tsscore", "field spurious", f"{p.stem} vs {ref_name}, {name}", rel, out))
            _log(f"tsscore spurious {rel} {name}: {out.status} {detail('tsscore', out)['spurious']}")
    # TSScore's range on the clips with text (no source image: their first frame is the reference)
    if not quick:
        for p in videos:
            if p.parent.name == "videos_text":
                out = score_tsscore(p, None)
                res.append(result("tsscore", "field range", p.stem, f"{p.parent.name}/{p.name}", out))
    return res


def run_model_metrics(tmp: Path) -> list[Result]:
    """AesScore, GmeScore, CRScore on one demo video: their status here (weights or an endpoint needed)."""
    path = write_video(demo_frames(TEXT_IDX, "text_stays", 192)[:16], demo.FPS, tmp / "model_metrics.mp4")
    img = save_png(text_reference(192), tmp / "model_metrics.png")
    case = Case(triple_id=1, image_path=str(img), prompt="The jar sways gently.", product="Glow cream")
    out = []
    for name in ("aesscore", "gmescore", "crscore"):
        spec = get_spec(name)
        try:
            r = spec.run(decode_video(path, spec.requests()), case)
        except Exception as exc:  # a metric that raises is an error result in scoring too
            out.append(Result(name, "availability", "demo video", "demo 192 px", None, "error", None,
                              f"{type(exc).__name__}: {exc}"))
            continue
        out.append(result(name, "availability", "demo video", "demo 192 px", r))
    return out


# -- the report -------------------------------------------------------------------------------------
TITLES = {"motionx": "MotionX", "tsscore": "TSScore", "productscore": "ProductScore", "aesscore": "AesScore",
          "gmescore": "GmeScore", "crscore": "CRScore"}


def _fmt_detail(d: dict) -> str:
    parts = []
    for k, v in d.items():
        if v is None or v == [] or v == 0 and k == "missing_refs":
            continue
        if isinstance(v, float):
            v = f"{v:.3f}"
        elif isinstance(v, list):
            v = "; ".join(str(x) for x in v)
        parts.append(f"{k} {v}")
    return ", ".join(parts).replace("|", "/")


def field_ranges(results: list[Result]) -> dict[str, str]:
    def span(vals: list[float]) -> str:
        return f"{min(vals):.3f}–{max(vals):.3f} over {len(vals)}" if vals else "none"

    def ok(rows: list[Result]) -> list[float]:
        return [r.value for r in rows if r.status == "ok"]

    rows = {m: [r for r in results if r.metric == m] for m in ("motionx", "tsscore", "productscore")}
    texts = [r for r in rows["tsscore"] if r.set == "field range"]
    clean = [r for r in rows["tsscore"] if r.set == "field spurious" and r.case.endswith("clean")]
    scene = [r for r in clean if r.case.split(" vs ")[0] in TEXT_IN_SCENE]
    free = [r for r in clean if r not in scene]
    right = [r for r in rows["productscore"] if r.set.startswith("field") and r.case == "right reference"]
    wrong = [r for r in rows["productscore"] if r.set.startswith("field") and r.case.startswith("wrong")]
    return {"motionx": f"every field video as it is: {span(ok([r for r in rows['motionx'] if r.set == 'field range']))}",
            "tsscore": f"the clips with text (their first frame as the reference): {span(ok(texts))}; the "
                       f"text-free clips: n/a on {sum(r.status == 'n/a' for r in free)} of {len(free)}, "
                       f"else {span(ok(free))}; text in the scene (a sign): {span(ok(scene))}",
            "productscore": f"right reference {span(ok(right))}; wrong reference {span(ok(wrong))}"}


# What a failing check means, where it was looked into (shown only while the check fails): a FAIL stays a FAIL
WHY_FAILS = {
    ("productscore", "demo, reference: product cut-out"):
        "With the offline classical-v1 embedder (no DINOv2 / CLIP / GME weights here) a recolour changes the "
        "descriptor as much as another product does: the recoloured crop's cosine lies below the calibrated "
        "same-category floor in most frames, under the swap that keeps the product half the time (and at the "
        "test's 192 px, 4 frames it ties with the missing product). A colour-invariant learned embedder is needed.",
    ("productscore", "field T-shirt clip"):
        "A subject-to-video pair: the reference is a product shot of the navy tee, not the clip's first frame, so "
        "the reference's box does not map onto the frame. Searching the first frame's segmenter candidates for "
        "the crop most like the reference was tried: its best T-shirt crop reaches cosine 0.82 with classical-v1, "
        "the cream jar's best 0.91, so the wrong reference would still win, and on the pour-honey pair the search "
        "raised the wrong references. Needs a learned embedder (DINOv2 / GME) and a grounded detector.",
    ("motionx", "field sam2_coffee_pour"):
        "The clip sped up 3x moves 2.5x as much (A 0.30 -> 0.76) but its handheld pours become jerky at 8 fps (S "
        "0.74 -> 0.41) and its bursts shorter than L_min = 0.3 s (R 0.46 -> 0.28): MotionX is the mean of "
        "amplitude, smoothness and activation, so a faster clip need not score higher. The amplitude orders all "
        "five field clips.",
}


def markdown(meta: dict, results: list[Result], checks: list[dict]) -> str:
    n_pass = sum(c["verdict"] == "PASS" for c in checks)
    lines = [f"# Known-answer validation of the metrics ({meta['date']})", "",
             f"Machine: {meta['platform']}, {meta['cpus']} CPUs ({meta['node']}). Run: {meta['seconds']:.0f} s, "
             f"{'--quick' if meta['quick'] else 'full'}; field media: {meta['fieldmedia']}. Command: "
             f"`{meta['command']}`. Code: {meta['code']}.", "",
             "Each case is a video written to MP4, decoded by `media.decode` and scored by the metric's own `run` with "
             f"its default config{f' ({QUICK_FRAMES} sampled frames for TSScore and ProductScore)' if meta['quick'] else ''}. "
             "Orderings are strict; a case without a score (n/a, unavailable) fails an ordering it is part of. "
             f"**{n_pass} of {len(checks)} checks pass.**", "", "| metric | set | check | values | verdict |",
             "|---|---|---|---|---|"]
    for c in checks:
        lines.append(f"| {TITLES[c['metric']]} | {c['set']} | {c['check']} | {c['why']} | **{c['verdict']}** |")
    failing = list(dict.fromkeys((c["metric"], c["set"]) for c in checks if c["verdict"] != "PASS"))
    if failing:
        lines += ["", "Why the failing checks fail:", ""]
        lines += [f"- {TITLES[m]}, {s_}: {WHY_FAILS.get((m, s_), 'not looked into yet.')}" for m, s_ in failing]
    for metric in ("motionx", "tsscore", "productscore"):
        rows = [r for r in results if r.metric == metric]
        if not rows:
            continue
        lines += ["", f"## {TITLES[metric]}", "", "| set (checks) | case | media | score | status | backend | detail |",
                  "|---|---|---|---:|---|---|---|"]
        seen = set()
        for r in rows:
            set_cell = ""
            if r.set not in seen:
                seen.add(r.set)
                verdicts = "; ".join(f"{c['check']}: **{c['verdict']}**" for c in checks
                                     if c["metric"] == metric and c["set"] == r.set)
                set_cell = f"{r.set}" + (f" ({verdicts})" if verdicts else "")
            score = f"{r.value:.3f}" if r.value is not None else "—"
            info = _fmt_detail(r.detail) if r.status == "ok" or r.detail.get("spurious") else (r.reason or "")
            lines.append(f"| {set_cell} | {r.case} | {r.media} | {score} | {r.status} | {r.backend or '—'} | "
                         f"{info.replace('|', '/')} |")
    other = [r for r in results if r.metric in ("aesscore", "gmescore", "crscore")]
    if other:
        lines += ["", "## AesScore, GmeScore, CRScore", "", "Not validated here: each needs weights or an MLLM "
                  "endpoint this machine does not have. Their status on a demo video:", "",
                  "| metric | status | backend | reason |", "|---|---|---|---|"]
        for r in other:
            lines.append(f"| {TITLES[r.metric]} | {r.status} | {r.backend or '—'} | {(r.reason or '').replace('|', '/')} |")
    if meta.get("ranges"):
        lines += ["", "## Ranges on the field videos", ""]
        for metric, text in meta["ranges"].items():
            lines.append(f"- {TITLES[metric]}: {text}")
    return "\n".join(lines) + "\n"


def code_state() -> str:
    """The commit the metric code is at, and its files changed but not committed when the run started (other
    work in the same tree changes what the metrics compute)."""
    import subprocess

    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True, timeout=20).stdout.rstrip()
        except (OSError, subprocess.SubprocessError):
            return ""
    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    dirty = [line[3:] for line in git("status", "--porcelain", "--", "metrics", "media").splitlines()]
    return f"commit {head}" + (f", with uncommitted changes to {', '.join(dirty)}" if dirty else "")


def write(out: Path, stem: str, meta: dict, results: list[Result]) -> list[dict]:
    """<out>/<stem>.json and .md; the checks and ranges are derived from the results here, so --render can
    rebuild the report from a saved JSON."""
    checks = checks_of(results)
    if meta.get("fieldmedia") != "absent":
        meta["ranges"] = field_ranges(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "checks": checks,
                                                  "results": [asdict(r) for r in results]}, indent=1,
                                                 ensure_ascii=False) + "\n", encoding="utf-8")
    (out / f"{stem}.md").write_text(markdown(meta, results, checks), encoding="utf-8")
    return checks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fieldmedia", default=str(REPO.parent / "shared" / "fieldmedia"))
    ap.add_argument("--quick", action="store_true", help="192 px demo scenes, 4 sampled frames, one field clip each")
    ap.add_argument("--out", default=str(REPO / "bench" / "results"))
    ap.add_argument("--render", metavar="JSON", help="rebuild the report from a saved validation JSON, scoring nothing")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.render:
        data = json.loads(Path(args.render).read_text(encoding="utf-8"))
        results = [Result(**r) for r in data["results"]]
        write(out, Path(args.render).stem, data["meta"], results)
        return 0
    t0 = time.perf_counter()
    code = code_state()
    root = Path(args.fieldmedia)
    have_field = (root / "MANIFEST.tsv").exists()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="advfx-validation-") as d:
        tmp = Path(d)
        results += run_demo(tmp, QUICK_SIZE if args.quick else demo.SIZE, QUICK_FRAMES if args.quick else None,
                            full=not args.quick)
        if have_field:
            results += run_field(root, tmp, args.quick)
        else:
            _log(f"no field media at {root}: demo cases only")
        results += run_model_metrics(tmp)
    meta = {"date": time.strftime("%Y-%m-%d"), "platform": platform.platform(), "node": platform.node(),
            "cpus": os.cpu_count(), "seconds": time.perf_counter() - t0, "quick": args.quick,
            "fieldmedia": str(root) if have_field else "absent", "code": code,
            "command": "python bench/validation.py" + (" --quick" if args.quick else ""),
            "productscore_calibration": {k: list(v) for k, v in
                                         ps.calibration_table(str(ps.calibration_path())).items()}}
    stem = "validation_quick" if args.quick else "validation"
    checks = write(out, stem, meta, results)
    failed = [c for c in checks if c["verdict"] != "PASS"]
    _log(f"wrote {out / stem}.md: {len(checks) - len(failed)} of {len(checks)} checks pass "
         f"({meta['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
