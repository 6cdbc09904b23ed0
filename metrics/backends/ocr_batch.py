"""PP-OCR on many images at once, for a GPU: rapidocr's own steps, with each network called once for all
the images instead of once per image.

On a GPU one network call costs its kernel launches more than its arithmetic (the detector: ~12.8 ms for
one frame, ~4.5 ms a frame in a batch of 8 on an H200), and rapidocr calls three networks per image.
Here the detector runs on the images in batches, the angle classifier once on every text crop of every
image, and the recogniser once per padded width over all images.

Every crop gets the input it would get alone: the classifier's input has a fixed shape, and the
recogniser's batches are formed per image exactly as rapidocr forms them (crops sorted by aspect ratio,
`rec_batch_num` at a time, padded to the widest of the batch); only batches of the same padded width are
then stacked into one call. So the text and boxes are those of `RapidOCRBackend.__call__` on each image
(tests/backends compares them); what changes is the number of calls.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np


@dataclass
class _Item:
    """One image on its way through the pipeline."""
    ori: np.ndarray
    img: np.ndarray
    record: dict
    det: object = None
    crops: list = field(default_factory=list)
    cls: object = None
    rec_pairs: list = field(default_factory=list)


def _detect(eng, items: list[_Item], det_inputs: list[np.ndarray | None], prep, batch: int) -> None:
    """Detector maps for all items in batches of equal input shape, then, per item, what rapidocr's
    detector call does with its map (boxes, sorted) and its detect-and-crop step (the crops)."""
    from rapidocr.ch_ppocr_det import TextDetOutput

    from .ocr import _Uint8Batch

    det = eng._load_det_model()
    maps: dict[int, np.ndarray] = {}
    by_shape: dict[tuple, list[int]] = {}
    for k, x in enumerate(det_inputs):
        if x is not None:
            by_shape.setdefault(x.shape, []).append(k)
    for ks in by_shape.values():
        for s in range(0, len(ks), batch):
            part = ks[s:s + batch]
            out = det.session(_Uint8Batch(np.stack([det_inputs[k] for k in part]), prep.mean, prep.std))
            maps.update({k: y[None] for k, y in zip(part, out)})
    for k, it in enumerate(items):
        if k not in maps:
            continue
        boxes, scores = det.postprocess_op(maps[k], it.img.shape[:2])
        if len(boxes) < 1:                 # nothing detected: rapidocr's own call returns no boxes too
            continue
        it.det = TextDetOutput(it.img, det.sorted_boxes(boxes), scores, elapse=0.0)
        it.crops = eng.crop_text_regions(it.img, it.det.boxes)


def _classify(eng, items: list[_Item]) -> None:
    """The angle classifier on every crop of every item in one go (its input shape is fixed, so a crop's
    result does not depend on its batch); each item gets its own TextClsOutput back."""
    from rapidocr.ch_ppocr_cls import TextClsOutput

    crops = [c for it in items for c in it.crops]
    if not crops:
        return
    cls = eng._load_cls_model()
    # a shallow copy with its own batch size (the session is shared): threads OCR at once on one engine
    whole = copy.copy(cls)
    whole.cls_batch_num = max(cls.cls_batch_num, len(crops))
    res = whole(crops)
    at = 0
    for it in items:
        n = len(it.crops)
        it.cls = TextClsOutput(img_list=res.img_list[at:at + n], cls_res=res.cls_res[at:at + n], elapse=0.0)
        at += n


def _recognise(eng, items: list[_Item]) -> None:
    """rapidocr's TextRecognizer.__call__ for every item, its session calls merged across items."""
    rec = eng._load_rec_model()
    word_box = bool(eng.return_word_box)
    chunks = []      # (item, positions in the item, wh ratios, max ratio, normalised batch)
    for it in items:
        imgs = it.cls.img_list if it.cls is not None else it.crops
        if not imgs or it.det is None:
            continue
        it.rec_pairs = [(("", 0.0), None)] * len(imgs)     # (line, words) per crop, every one filled below
        order = np.argsort(np.array([im.shape[1] / float(im.shape[0]) for im in imgs]))
        _c, img_h, img_w = rec.rec_image_shape[:3]
        for beg in range(0, len(imgs), rec.rec_batch_num):
            pos = order[beg:beg + rec.rec_batch_num]
            ratios = [imgs[p].shape[1] / imgs[p].shape[0] for p in pos]
            max_ratio = max([img_w / img_h, *ratios])
            x = np.concatenate([rec.resize_norm_img(imgs[p], max_ratio)[None] for p in pos]).astype(np.float32)
            chunks.append((it, pos, ratios, max_ratio, x))
    by_width: dict[tuple, list[int]] = {}
    for j, ch in enumerate(chunks):
        by_width.setdefault(ch[4].shape[1:], []).append(j)
    for js in by_width.values():
        preds = rec.session(np.concatenate([chunks[j][4] for j in js]))
        at = 0
        for j in js:
            it, pos, ratios, max_ratio, x = chunks[j]
            lines, words = rec.postprocess_op(preds[at:at + len(x)], word_box, wh_ratio_list=ratios,
                                              max_wh_ratio=max_ratio)
            at += len(x)
            for r, line in enumerate(lines):
                it.rec_pairs[pos[r]] = (line, words[r] if word_box else None)


def _final(eng, it: _Item):
    """rapidocr's output for one item, from its own build step."""
    from rapidocr.ch_ppocr_cls import TextClsOutput
    from rapidocr.ch_ppocr_rec import TextRecOutput
    from rapidocr.ch_ppocr_rec.main import RTL_LANGS, normalize_lang, reorder_bidi_for_display
    from rapidocr.utils.output import RapidOCROutput

    if it.det is None or not it.rec_pairs:
        return RapidOCROutput()
    lines, words = zip(*it.rec_pairs)
    txts, scores = zip(*lines)
    if normalize_lang(eng.text_rec.cfg.lang_type) in RTL_LANGS:
        txts = reorder_bidi_for_display(txts)
    imgs = it.cls.img_list if it.cls is not None else it.crops
    rec = TextRecOutput(imgs, tuple(txts), list(scores), tuple(words), 0.0)
    return eng.build_final_output(it.ori, it.det, it.cls or TextClsOutput(), rec, it.crops, it.record)


def ocr_batched(eng, bgrs: list[np.ndarray], det_batch: int = 8) -> list:
    """rapidocr's output for each BGR image in `bgrs`, from an engine whose sessions are `ocr.TorchSession`s
    (its detector's pre-processing leaves normalisation to the device). Threads may call it at once on one
    engine: nothing here changes the engine's state."""
    from rapidocr.main import apply_vertical_padding

    prep = eng._load_det_model().get_preprocess()
    items, det_inputs = [], []
    for bgr in bgrs:
        ori = eng.load_img(bgr)
        img, record = eng.preprocess_img(ori)
        # rapidocr's detect_and_crop: vertical padding (recorded for mapping boxes back), else none
        if eng.cfg.Global.use_vertical_padding:
            img, record = apply_vertical_padding(img, record, eng.width_height_ratio, eng.min_height)
        else:
            record["padding_1"] = {"top": 0, "left": 0}
        items.append(_Item(ori, img, record))
        batch = prep(img)
        det_inputs.append(None if batch is None else batch.pixels[0])
    _detect(eng, items, det_inputs, prep, det_batch)
    if eng.use_cls:
        _classify(eng, items)
    _recognise(eng, items)
    return [_final(eng, it) for it in items]
