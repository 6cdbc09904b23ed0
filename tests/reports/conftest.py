"""Fixture workspaces with known labels and scores for the benchmark, statistics and export tests.

Built directly with the storage functions; media are small files with real content hashes (the export
hard-links and verifies them; nothing here decodes them)."""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from curation.current import current_keys
from storage import Workspace, images, labels, metric_results, prompts, taxonomy, triples, videos

MODELS = ("GenA", "GenB", "GenC")
# per category: number of source images; per image the number of videos cycles through VIDEOS_PER_IMAGE
IMAGES_PER_CATEGORY = (14, 11, 9, 7, 5, 3)
VIDEOS_PER_IMAGE = (1, 1, 2, 1, 3, 1, 1, 2)
MODEL_QUALITY = {"GenA": 0.75, "GenB": 0.55, "GenC": 0.35}


@dataclass
class Fixture:
    root: Path
    media: Path
    triples: list[dict] = field(default_factory=list)   # triple_id, video_id, image_id, category_id, model, ...
    accepted: set = field(default_factory=set)           # triple ids a designer accepted
    rejected: set = field(default_factory=set)
    bad_images: set = field(default_factory=set)
    dup_pairs: list = field(default_factory=list)        # (image_id, image_id) near-duplicates

    def open(self) -> Workspace:
        return Workspace.open(self.root)


def _file(folder: Path, name: str, payload: bytes) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_bytes(payload)
    return {"sha256": hashlib.sha256(payload).hexdigest(), "path": str(p), "bytes": len(payload)}


def build_fixture(tmp: Path, *, seed: int = 0) -> Fixture:
    rng = random.Random(seed)
    fx = Fixture(root=tmp / "ws", media=tmp / "media")
    with Workspace.open(fx.root) as ws:
        tax = taxonomy.taxonomy(ws)
        # the first subcategory of each of the 6 domains
        cats, seen = [], set()
        for c in tax:
            if c["domain"] not in seen:
                seen.add(c["domain"])
                cats.append(c)
        vcount = 0
        images_by_cat: dict[int, list[int]] = {}
        for ci, (cat, n_img) in enumerate(zip(cats, IMAGES_PER_CATEGORY)):
            for k in range(n_img):
                rec = _file(fx.media / "images", f"img_{ci}_{k}.png", f"image {ci} {k} {seed}".encode() * 40)
                rec.update(format="PNG", width=512 + k, height=512, mode="RGB", has_alpha=False,
                           category_id=cat["id"], product=f"Product {ci}-{k}", source="fixture")
                image_id, _ = images.add_image(ws, rec)
                images_by_cat.setdefault(cat["id"], []).append(image_id)
                prompt = f"The {cat['category'].lower()} product {k} turns slowly; fixed camera; the text stays sharp."
                prompt_id, _ = prompts.add_prompt(ws, prompt, image_id=image_id)
                for v in range(VIDEOS_PER_IMAGE[(ci + k) % len(VIDEOS_PER_IMAGE)]):
                    model = MODELS[(vcount + v) % len(MODELS)]
                    vrec = _file(fx.media / "videos", f"vid_{ci}_{k}_{v}.mp4",
                                 f"video {ci} {k} {v} {seed}".encode() * 60)
                    vrec.update(container="mp4", codec="h264", fps=16.0, frame_count=80, width=384, height=384,
                                duration=5.0, model=model, source_image_id=image_id, prompt_id=prompt_id)
                    video_id, _ = videos.add_video(ws, vrec)
                    videos.fill_missing(ws, video_id, {"caption": f"caption of video {video_id}"})
                    tid, _ = triples.add_triple(ws, video_id=video_id, image_id=image_id, prompt_id=prompt_id,
                                                model=model, category_id=cat["id"], product=rec["product"])
                    fx.triples.append({"triple_id": tid, "video_id": video_id, "image_id": image_id,
                                       "category_id": cat["id"], "domain": cat["domain"], "model": model,
                                       "prompt": prompt})
                vcount += 1
        # near-duplicate groups: pairs of images within a category, and one pair across two categories
        for cat_id, ids in images_by_cat.items():
            if len(ids) >= 4:
                fx.dup_pairs.append((ids[0], ids[3]))
        c0, c1 = list(images_by_cat)[:2]
        fx.dup_pairs.append((images_by_cat[c0][1], images_by_cat[c1][1]))
        for a, b in fx.dup_pairs:
            ws.execute("UPDATE images SET dup_group = ? WHERE id IN (?, ?)", [min(a, b), a, b])
        # scores and labels: quality depends on the model; designers accept high-quality videos. Results are
        # stored under the keys this machine would write (curation.current), so they count as current
        cur = current_keys(ws)

        def put(metric: str, **kw) -> None:
            metric_results.put_result(ws, metric=metric, version=cur[metric]["version"],
                                      params_hash=cur[metric]["params_hash"], **kw)

        for t in fx.triples:
            q = MODEL_QUALITY[t["model"]] + rng.uniform(-0.2, 0.2)
            t["quality"] = q
            put("motionx", video_id=t["video_id"],
                value=q, status="ok", backend="flow")
            ts_na = t["triple_id"] % 7 == 0
            put("tsscore", video_id=t["video_id"],
                triple_id=t["triple_id"], value=None if ts_na else min(1.0, q + 0.1),
                status="n/a" if ts_na else "ok", reason="no text" if ts_na else None)
            put("productscore", video_id=t["video_id"], triple_id=t["triple_id"], value=rng.uniform(0.3, 0.9),
                status="ok", backend="classical")
            put("aesscore", video_id=t["video_id"],
                value=None, status="unavailable", reason="CLIP ViT-L/14 weights not found")
            put("gmescore", video_id=t["video_id"],
                triple_id=t["triple_id"], value=0.3 + 0.01 * (t["triple_id"] % 5), status="ok")
            # crscore: never scored for this fixture (the leaderboard says "not scored")
            accept = q >= 0.5
            (fx.accepted if accept else fx.rejected).add(t["triple_id"])
            labels.append_event(ws, item_kind="video", item_id=t["video_id"], value="accept" if accept else "reject",
                                annotator="dana", reasons=[] if accept else ["insufficient motion"])
        # one image labelled bad: its triples leave the default export
        bad = fx.triples[5]["image_id"]
        labels.append_event(ws, item_kind="image", item_id=bad, value="bad", annotator="dana", reasons=["blurry"])
        fx.bad_images.add(bad)
    return fx


@pytest.fixture(scope="session")
def _fixture_template(tmp_path_factory) -> Fixture:
    return build_fixture(tmp_path_factory.mktemp("reports_fx"))


@pytest.fixture()
def fx(tmp_path, _fixture_template) -> Fixture:
    """A fresh copy of the fixture workspace (media stay shared and read-only by convention)."""
    import shutil

    dst = tmp_path / "ws"
    shutil.copytree(_fixture_template.root, dst)
    copy = Fixture(root=dst, media=_fixture_template.media, triples=_fixture_template.triples,
                   accepted=_fixture_template.accepted, rejected=_fixture_template.rejected,
                   bad_images=_fixture_template.bad_images, dup_pairs=_fixture_template.dup_pairs)
    return copy
