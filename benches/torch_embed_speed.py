"""The PyTorch side of `cargo bench --bench embed_speed`: pooled-embedding extraction of a
pretrained backbone under `torch.inference_mode()` with `torch.autocast("cpu",
dtype=torch.bfloat16)` and channels-last (model and input), on fixed random normalised
images, printing one JSON line. With `--images FILE` (safetensors, key "images"), also the
top-1 ImageNet class of every image in float32 and under autocast, and their agreement.

Usage: python torch_embed_speed.py MODEL [--batch 32] [--size 224] [--batches 4]
       [--warmup 1] [--threads 2] [--images FILE]
"""

import argparse
import json
import time

import torch
from safetensors.torch import load_file

import torch_models


def top1(model, images, autocast):
    classes = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        for start in range(0, images.shape[0], 32):
            x = images[start : start + 32].contiguous(memory_format=torch.channels_last)
            classes += model(x).float().argmax(1).tolist()
    return classes


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, embed = torch_models.build(args.model)
    model = model.eval().to(memory_format=torch.channels_last)
    images = torch.randn(args.batch, 3, args.size, args.size)
    checksum = 0.0
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        for _ in range(args.warmup):
            embed(images.to(memory_format=torch.channels_last)).float()
        cpu_start = torch_models.cpu_seconds()
        start = time.perf_counter()
        for _ in range(args.batches):
            # A loader's batch is contiguous: the conversion is part of every batch.
            embedding = embed(images.to(memory_format=torch.channels_last)).float()
            checksum += float(embedding[0, 0])
        seconds = time.perf_counter() - start
        cpu = torch_models.cpu_seconds() - cpu_start
    result = {
        "images_per_s": args.batches * args.batch / seconds,
        "cpu_ms_per_image": 1000 * cpu / (args.batches * args.batch),
        "threads": torch.get_num_threads(),
        "checksum": checksum,
    }
    if args.images:
        real = load_file(args.images)["images"]
        fp32 = top1(model, real, autocast=False)
        bf16 = top1(model, real, autocast=True)
        result["top1_fp32"] = fp32
        result["agreement"] = sum(a == b for a, b in zip(fp32, bf16)) / len(fp32)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
