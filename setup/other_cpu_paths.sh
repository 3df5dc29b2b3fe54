#!/usr/bin/env bash
# Runs the tests whose results depend on the CPU's bfloat16 path once more on each path
# that this machine does not take by default, so that every machine exercises both:
#   - native bf16 with AMX (recent Intel Xeon): float32 (TRANSFER_WORKBENCH_BF16=off), and
#     bf16 without AMX (ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16: the AVX-512 BF16 kernels of
#     AMD EPYC / Zen 4);
#   - native bf16 without AMX (AVX-512 BF16): float32;
#   - no native bf16: bf16 emulated by libtorch (TRANSFER_WORKBENCH_BF16=on; slower).
# Called by `./workbench.sh test` after the whole suite; LIBTORCH must be set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The tests that train a linear probe (bf16 frozen passes) or check the bf16 recipe.
TESTS=(--test train_engine --test inspect_neighbours --test gui_inspect --lib)

flags=$(grep -o -w -E 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null | sort -u | tr '\n' ' ' || true)
paths=()
case "$flags" in
    *amx_bf16*) paths=("TRANSFER_WORKBENCH_BF16=off" "TRANSFER_WORKBENCH_BF16=on ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16") ;;
    *avx512_bf16*) paths=("TRANSFER_WORKBENCH_BF16=off") ;;
    *) paths=("TRANSFER_WORKBENCH_BF16=on") ;;
esac
echo "other_cpu_paths: this CPU's bf16 features: ${flags:-none}"
for path in "${paths[@]}"; do
    echo "other_cpu_paths: cargo test on the path $path"
    env $path cargo test "${TESTS[@]}"
done
