"""Write randomly initialised checkpoints in the real on-disk layout of the models folder, so the
benchmarks time the real model code where no weights can be downloaded (speed does not depend on the
values; the scores such models give mean nothing and are never stored in a workspace).

    python bench/make_random_models.py DIR      # then: ADVFX_MODELS=DIR python bench/bench_metrics.py ...
"""
from __future__ import annotations

import sys
from pathlib import Path


def main(out: str, only: list[str] | None = None) -> None:
    """`only`: a subset of clip, dino, sam2, aesthetic (default: all four)."""
    import torch
    from safetensors.torch import save_file

    root = Path(out)
    only = list(only or ("clip", "dino", "sam2", "aesthetic"))
    for sub in only:
        (root / sub).mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if "clip" in only:
        import open_clip
        for arch in ("ViT-B-32", "ViT-L-14"):
            m = open_clip.create_model(arch, pretrained=None, force_quick_gelu=True)
            save_file({k: v.contiguous() for k, v in m.state_dict().items()},
                      str(root / "clip" / f"{arch}.safetensors"))
    if "dino" in only:
        import timm
        dino = timm.create_model("vit_small_patch14_dinov2", pretrained=False)
        save_file({k: v.contiguous() for k, v in dino.state_dict().items()},
                  str(root / "dino" / "vit_small_patch14_dinov2.safetensors"))
    if "sam2" in only:
        from sam2.build_sam import build_sam2
        sam = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu")
        torch.save({"model": sam.state_dict()}, root / "sam2" / "sam2.1_hiera_tiny.pt")
    if "aesthetic" not in only:
        print(f"random checkpoints written under {root}: {', '.join(only)}")
        return
    dims = [768, 1024, 128, 64, 16, 1]  # the LAION improved aesthetic MLP, keys layers.{0,2,4,6,7}
    head = {}
    for i, (a, b) in zip((0, 2, 4, 6, 7), zip(dims[:-1], dims[1:])):
        head[f"layers.{i}.weight"] = torch.randn(b, a) * 0.02
        head[f"layers.{i}.bias"] = torch.zeros(b)
    torch.save(head, root / "aesthetic" / "sac+logos+ava1-l14-linearMSE.pth")
    print(f"random checkpoints written under {root}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "random_models")
