"""The PyTorch side of `cargo bench --bench data_pipeline`: the same JPEGs through
torch.utils.data.DataLoader (PIL + torchvision transforms v1), printing one JSON line.

Usage: python torch_dataloader.py LIST_FILE [--workers 2] [--batch 32] [--epochs 2]
LIST_FILE holds one image path per line.
"""

import argparse
import json
import os
import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms


class Files(Dataset):
    def __init__(self, paths, transform):
        self.paths = paths
        self.transform = transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        with Image.open(self.paths[index]) as image:
            return self.transform(image.convert("RGB")), index % 2


def cpu_seconds(pids):
    """User + system CPU time of the given processes, from /proc (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("list_file")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    with open(args.list_file, encoding="utf-8") as f:
        paths = [line.rstrip("\n") for line in f if line.strip()]
    transform = transforms.Compose(
        [
            transforms.RandomResizedCrop(224),
            transforms.RandomHorizontalFlip(),
            transforms.ColorJitter(brightness=0.2, contrast=0.2),
            transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )
    loader = DataLoader(
        Files(paths, transform),
        batch_size=args.batch,
        shuffle=True,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
    )
    torch.manual_seed(0)
    checksum = 0.0
    for images, _ in loader:  # warm-up epoch: starts the workers, fills the page cache
        checksum += float(images[0, 0, 0, 0])
    # The persistent workers plus this process: all the CPU the DataLoader uses.
    pids = [os.getpid()] + [w.pid for w in getattr(loader._iterator, "_workers", [])]
    cpu_start = cpu_seconds(pids)
    start = time.perf_counter()
    count = 0
    for _ in range(args.epochs):
        for images, _ in loader:
            count += images.shape[0]
            checksum += float(images[0, 0, 0, 0])
    seconds = time.perf_counter() - start
    cpu = cpu_seconds(pids) - cpu_start
    print(
        json.dumps(
            {
                "images": count,
                "seconds": seconds,
                "images_per_s": count / seconds,
                "cpu_ms_per_image": 1000 * cpu / count,
                "processes": len(pids),
            }
        )
    )


if __name__ == "__main__":
    main()
