"""The PyTorch reference models of the speed benchmarks (`train_speed`, `embed_speed`):
torchvision's MobileNetV2 and `efficientnet_lite_pytorch`'s EfficientNet-Lite0, loaded with
the asset cache's pretrained weights (the same files the Rust side loads), plus CPU-time
accounting.
"""

import os
import resource

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

WEIGHTS = os.path.join(
    os.environ.get("TRANSFER_WORKBENCH_CACHE") or os.path.expanduser("~/.cache/transfer-workbench"),
    "assets",
    "weights",
)


def build(name):
    """The ImageNet model `name` with pretrained weights, and a function giving its pooled
    embedding `[N, D]`."""
    state = load_file(os.path.join(WEIGHTS, f"{name}.safetensors"))
    if name == "mobilenet_v2":
        from torchvision.models import mobilenet_v2

        model = mobilenet_v2()
        model.load_state_dict(state, strict=True)

        def embed(x):
            return torch.flatten(F.adaptive_avg_pool2d(model.features(x), 1), 1)

        return model, embed
    if name.startswith("efficientnet_lite"):
        from efficientnet_lite_pytorch import EfficientNet

        model = EfficientNet.from_name(name.replace("_", "-"))
        model.load_state_dict(state, strict=True)

        def embed(x):
            return torch.flatten(F.adaptive_avg_pool2d(model.extract_features(x), 1), 1)

        return model, embed
    raise SystemExit(f"unknown model {name}")


def replace_head(model, name, classes):
    """A fresh `classes`-way linear head without dropout (as the Rust side's head)."""
    if name == "mobilenet_v2":
        model.classifier = torch.nn.Sequential(torch.nn.Linear(1280, classes))
    else:
        model._fc = torch.nn.Linear(model._fc.in_features, classes)
        model._dropout = torch.nn.Identity()


def cpu_seconds():
    """User + system CPU seconds of this process (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
