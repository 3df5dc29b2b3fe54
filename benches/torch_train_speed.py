"""The PyTorch side of `cargo bench --bench train_speed`: eager training steps (forward,
cross-entropy, backward, AdamW step) of a pretrained backbone with a fresh 10-class head on
fixed random normalised images, printing one JSON line.

Usage: python torch_train_speed.py MODEL --layout default|channels_last [--batch 32]
       [--size 224] [--steps 3] [--warmup 1] [--threads 2]
"""

import argparse
import json
import time

import torch

import torch_models


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--layout", choices=["default", "channels_last"], required=True)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, _ = torch_models.build(args.model)
    torch_models.replace_head(model, args.model, 10)
    nhwc = args.layout == "channels_last"
    if nhwc:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    # The engine's settings: AdamW, lr 1e-3, weight decay 1e-4 (PyTorch's CPU default
    # implementation, a loop over the parameters).
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    images = torch.randn(args.batch, 3, args.size, args.size)
    targets = torch.randint(10, (args.batch,))

    def step():
        x = images.to(memory_format=torch.channels_last) if nhwc else images
        loss = torch.nn.functional.cross_entropy(model(x), targets)
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
