#!/usr/bin/env python3
"""Writes src/model/weight_catalogue.json: every torchvision ImageNet weight variant of the
families the workbench implements or plans (ResNet, DenseNet, EfficientNet, MobileNetV2/V3,
ConvNeXt, ViT, VGG with and without batch norm, Swin, Inception-v3), from torchvision's own
metadata (`torchvision.models.get_model_weights`), offline.

Run with the set-up's venv (torchvision 0.28):
  ~/.cache/transfer-workbench/venv/bin/python setup/make_weight_catalogue.py [OUT.json]
The output is data kept in the repository; the app never runs Python to read it.
"""
import json
import math
import os
import re
import sys

import torchvision
from torchvision.models import get_model_weights, list_models

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "src", "model", "weight_catalogue.json")
FAMILIES = {
    "resnet": "ResNet",
    "wide_resnet": "ResNet",
    "resnext": "ResNet",
    "densenet": "DenseNet",
    "efficientnet": "EfficientNet",
    "mobilenet_v2": "MobileNetV2",
    "mobilenet_v3": "MobileNetV3",
    "convnext": "ConvNeXt",
    "vit": "VisionTransformer",
    "vgg": "VGG",
    "swin": "Swin",
    "inception_v3": "Inception-v3",
}
# torchvision's file names end in the first hex digits of the file's sha256 (`-<hex>.pth`),
# which `torch.hub` checks; the workbench checks the same prefix.
HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")
LICENCE = "BSD-3-Clause (torchvision); trained on ImageNet-1K, whose terms allow non-commercial research use"


def finite(value):
    """A number, or None for torchvision's NaN (metrics it does not publish)."""
    return None if isinstance(value, float) and math.isnan(value) else value


def family_of(model: str):
    for prefix, family in FAMILIES.items():
        if model == prefix or model.startswith(prefix + "_") or re.match(rf"{prefix}\d", model):
            return family
    return None


def entry(model: str, family: str, weights) -> dict:
    meta = weights.meta
    transforms = weights.transforms.keywords if hasattr(weights.transforms, "keywords") else {}
    preset = weights.transforms()
    file_name = weights.url.rsplit("/", 1)[-1]
    found = HASH_IN_NAME.search(file_name)
    metrics = meta.get("_metrics", {}).get("ImageNet-1K", {})
    return {
        "name": f"{model}.{weights.name}",
        "backbone": model,
        "family": family,
        "variant": weights.name,
        "url": weights.url,
        "file_name": file_name,
        "sha256_prefix": found.group(1) if found else "",
        "size_mb": meta.get("_file_size"),
        "imagenet_top1": finite(metrics.get("acc@1")),
        "imagenet_top5": finite(metrics.get("acc@5")),
        "parameters": meta.get("num_params"),
        "gflops": meta.get("_ops"),
        "crop_px": int(getattr(preset, "crop_size", [transforms.get("crop_size", 224)])[0]),
        "resize_px": int(getattr(preset, "resize_size", [transforms.get("resize_size", 256)])[0]),
        "mean": [float(v) for v in getattr(preset, "mean", [0.485, 0.456, 0.406])],
        "std": [float(v) for v in getattr(preset, "std", [0.229, 0.224, 0.225])],
        "interpolation": str(getattr(preset, "interpolation", "bilinear")).split(".")[-1].lower(),
        "recipe": meta.get("recipe", ""),
        "licence": LICENCE,
        "is_default": weights is get_model_weights(model).DEFAULT,
    }


def main() -> int:
    out = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    entries = []
    for model in sorted(list_models(module=torchvision.models)):
        family = family_of(model)
        if family is None:
            continue
        for weights in get_model_weights(model):
            if "ImageNet-1K" not in weights.meta.get("_metrics", {}):
                continue
            entries.append(entry(model, family, weights))
    missing = [e["name"] for e in entries if not e["sha256_prefix"]]
    if missing:
        sys.exit(f"no hash prefix in the file names of {missing}")
    doc = {
        "schema": 1,
        "source": f"torchvision {torchvision.__version__} weight metadata (get_model_weights)",
        "generated_by": "setup/make_weight_catalogue.py",
        "entries": entries,
    }
    text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, out)
    print(f"{out}: {len(entries)} weight variants of {len({e['backbone'] for e in entries})} models",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
