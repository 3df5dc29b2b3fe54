#!/usr/bin/env bash
# Linear probe of one backbone on the Fashion-MNIST demo (2,000 training and 1,000 test
# images), its shipped pretrained weights against the same network with random weights:
# the figure that shows a pretrained encoder is worth its download. 64 px, seed 0, 10 epochs
# of the probe on cached embeddings (lr 3e-3), light augmentation off for the embeddings,
# whole-image evaluation. Prints each run's final and best test accuracy.
# Usage: experiments/probe_pretrained.sh BACKBONE [INPUT_PX] [BINARY]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
backbone="${1:?usage: $0 BACKBONE [INPUT_PX] [BINARY]}"
size="${2:-64}"
bin="${3:-$here/target/release/transfer-workbench}"
[ -x "$bin" ] || bin="$here/target/debug/transfer-workbench"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
common=(--strategy probe --backbone "$backbone" --epochs 10 --lr 3e-3 --input-size "$size"
        --seed 0 --monitor accuracy --augment none --eval-crop 1.0)
for weights in pretrained random; do
  mkdir -p "$work/$weights"
  cp "$here/projects/fashion-mnist/project.ron" "$work/$weights/"
  "$bin" train "$work/$weights" --weights "$weights" "${common[@]}" > "$work/$weights.log" 2>&1 \
    || { cat "$work/$weights.log"; exit 1; }
done
for weights in pretrained random; do
  python3 - "$work/$weights/runs/run-001/history.jsonl" "$backbone" "$weights" "$size" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
acc = [r["validation"]["accuracy"] for r in rows]
print(f"{sys.argv[2]} {sys.argv[4]} px, {sys.argv[3]:>10} weights: linear-probe test accuracy "
      f"{acc[-1]:.3f} (best {max(acc):.3f}, {len(rows)} epochs)")
PY
done
