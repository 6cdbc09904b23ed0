"""Fake OCR / segmentation backends with the metrics.backends interface."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Box:
    quad: np.ndarray
    text: str
    conf: float


class FakeOCR:
    name = "fake-ocr"

    def __init__(self, boxes_frac=((0.1, 0.02, 0.9, 0.12),), conf: float = 0.95) -> None:
        self.boxes_frac = boxes_frac
        self.conf = conf

    def __call__(self, img):
        h, w = img.shape[:2]
        out = []
        for x0, y0, x1, y1 in self.boxes_frac:
            q = np.array([[x0 * w, y0 * h], [x1 * w, y0 * h], [x1 * w, y1 * h], [x0 * w, y1 * h]], np.float32)
            out.append(Box(q, "SALE", self.conf))
        return out


class FakeSeg:
    name = "fake-seg"

    def __init__(self, rect_frac=(0.3, 0.3, 0.7, 0.8)) -> None:
        self.rect_frac = rect_frac

    def segment_image(self, img, *, alpha=None, box=None, product=None, exclude_boxes=None):
        h, w = img.shape[:2]
        m = np.zeros((h, w), bool)
        x0, y0, x1, y1 = self.rect_frac
        m[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)] = True
        return m
