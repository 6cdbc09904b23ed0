"""MLLM prompt templates and helpers for `python -m curation prompts` and `captions`.

The "video description prompt" (paper C.5) turns an ad image, the first frame, into a motion-aware prompt (natural
product dynamics, fixed camera, stable advertising text). The "video caption prompt" describes an
accepted generated video from sampled frames. Templates are versioned by name; the name is stored
with every output."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

# The paper's appendix C.5 prompts, reconstructed: v2 follows C.5 (v1 was a shorter prompt of our own).
# Stored prompts and captions keep the name of the template that made them, so v1 outputs stay recognisable.
DESCRIPTION_TEMPLATE_NAME = "video-description-v2"
DESCRIPTION_TEMPLATE = (
    "You write prompts for an image-to-video model that animates product advertisement images.\n"
    "This advertisement image{product_clause} is the FIRST FRAME of a 5-second video. Write ONE vivid, concrete "
    "English description of 50-100 words of what happens in that video:\n"
    "- the natural dynamics of the product itself (for example liquid pouring or splashing, steam rising, "
    "fabric swaying, a slow turn, light gliding over its surface);\n"
    "- changes of atmosphere and lighting (light sweeping, glow, sparkle, particles, mist, shadows moving);\n"
    "- motion and scene change that keeps the video alive, rather than a static image or the same movement "
    "repeated;\n"
    "- the camera stays fixed (no pan, zoom or cut);\n"
    "- every advertising text, logo and price stays stable and legible, exactly as in the image, and the product "
    "keeps its shape, colours and branding.\n"
    "Output only the description, no title, no quotes.")

CAPTION_TEMPLATE_NAME = "video-caption-v2"
CAPTION_TEMPLATE = (
    "These are {n} frames sampled in order from a short generated product advertisement video{product_clause}. "
    "Write ONE detailed English caption of 3-5 sentences covering: the subject's appearance (the product's "
    "shape, colours, materials, branding); its actions and motion and how the scene changes; the textual "
    "content visible in the video (quote the advertising text as it reads); the background composition; and "
    "the overall atmosphere (lighting, mood, style). Output only the caption, no title, no quotes.")


def _product_clause(product: str | None, how: str) -> str:
    return f" {how} {product}" if product else ""


def description_prompt(product: str | None) -> str:
    return DESCRIPTION_TEMPLATE.format(product_clause=_product_clause(product, "for the product:"))


def caption_prompt(n_frames: int, product: str | None) -> str:
    return CAPTION_TEMPLATE.format(n=n_frames, product_clause=_product_clause(product, "for"))


def clean_reply(text: str) -> str:
    """Strip wrapping quotes, code fences and a leading 'Prompt:'/'Caption:' label; collapse whitespace."""
    t = text.strip()
    t = re.sub(r"^```[a-z]*\s*|\s*```$", "", t).strip()
    t = re.sub(r"^(prompt|caption|video prompt)\s*:\s*", "", t, flags=re.I).strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'“”":
        t = t[1:-1].strip()
    t = t.strip("“”").strip()
    return re.sub(r"\s+", " ", t)


def sample_frames(path: str | Path, n: int = 6, max_side: int = 768) -> list[np.ndarray]:
    """n frames spread evenly over the video, as a metric's uniform request samples them (media.decode)."""
    from media.decode import read_frames

    return read_frames(path, n=n, max_side=max_side).frames
