#!/usr/bin/env bash
# The Fashion-MNIST acceptance experiment of the training engine (issue #5): the demo data
# (2,000 training and 1,000 test images), 64 px, seed 0, 4 epochs each:
#   full fine-tuning of pretrained MobileNetV2, the same from scratch, and the linear probe.
# Prints each run's final test accuracy and the probe's epoch times. About 10-15 minutes on
# 2 cores. Usage: experiments/fashion_mnist.sh [BINARY]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$here/target/release/transfer-workbench}"
[ -x "$bin" ] || bin="$here/target/debug/transfer-workbench"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Fashion-MNIST's 28 px garments fill the frame: light augmentation, and the evaluation
# keeps the whole image (no 87.5% centre crop).
common=(--epochs 4 --input-size 64 --seed 0 --threads 1 --monitor accuracy --augment light --eval-crop 1.0)
for name in finetune scratch probe; do
  mkdir -p "$work/$name"
  cp "$here/projects/fashion-mnist/project.ron" "$work/$name/"
done
"$bin" train "$work/finetune" --strategy finetune "${common[@]}"
"$bin" train "$work/scratch" --strategy finetune --weights random "${common[@]}"
"$bin" train "$work/probe" --strategy probe --lr 3e-3 "${common[@]}"
echo
for name in finetune scratch probe; do
  python3 - "$work/$name/runs/run-001/history.jsonl" "$name" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
times = ", ".join(f"{r['duration_secs']:.3f}" for r in rows)
print(f"{sys.argv[2]:>9}: test accuracy {rows[-1]['validation']['accuracy']:.3f} "
      f"(best {max(r['validation']['accuracy'] for r in rows):.3f}); epoch seconds {times}")
if sys.argv[2] == "probe":
    later = max(r["duration_secs"] for r in rows[1:])
    print(f"{'':>9}  first epoch / slowest later epoch = {rows[0]['duration_secs'] / later:.0f}x")
PY
done
