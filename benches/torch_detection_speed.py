"""The PyTorch side of `cargo bench --bench detection_speed`: eager training steps (forward,
the detector's loss from box targets, backward, AdamW step) of pretrained MobileNetV2 with
the reference "objects as points" head (`tests/fixtures/parity/centernet_reference.py`, the
same network as the app's) on fixed random normalised images and fixed boxes, printing one
JSON line. The targets are drawn from the boxes inside every step, as the app does.

Usage: python torch_detection_speed.py --layout default|channels_last [--batch 16]
       [--size 224] [--classes 2] [--steps 3] [--warmup 1] [--threads 2]
"""

import argparse
import json
import os
import sys
import time

import torch

import torch_models

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "parity"))
import centernet_reference as ref  # noqa: E402


def fixed_boxes(batch, size, classes):
    """Five boxes per image on a fixed pattern (the bench's Rust side draws the same)."""
    boxes = []
    for i in range(batch):
        image = []
        for j in range(5):
            side = size * (0.1 + 0.05 * j)
            x0 = (size * (0.1 + 0.15 * j) + 7 * i) % (size - side)
            y0 = (size * (0.6 - 0.1 * j) + 3 * i) % (size - side)
            image.append((x0, y0, x0 + side, y0 + side, (i + j) % classes, False))
        boxes.append(image)
    return boxes


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--layout", choices=["default", "channels_last"], required=True)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ref.CenterNet(args.classes)
    ref.load_pretrained(model)
    nhwc = args.layout == "channels_last"
    if nhwc:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    images = torch.randn(args.batch, 3, args.size, args.size)
    boxes = fixed_boxes(args.batch, args.size, args.classes)

    def step():
        x = images.to(memory_format=torch.channels_last) if nhwc else images
        loss = ref.detection_loss(model(x), boxes)[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    for _ in range(args.warmup):
        step()
    cpu_start = torch_models.cpu_seconds()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = time.perf_counter() - start
    cpu = torch_models.cpu_seconds() - cpu_start
    print(
        json.dumps(
            {
                "images_per_s": args.steps * args.batch / seconds,
                "cpu_s_per_step": cpu / args.steps,
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
