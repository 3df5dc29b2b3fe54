#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of user-supplied bytes (fuzz/, cargo-fuzz on the
# nightly toolchain, libFuzzer). Each target runs SECONDS (default 600); the targets run
# JOBS at a time (default 1). Corpora grow in fuzz/corpus/<target>/ (kept between runs),
# logs go to fuzz/logs/, crash inputs to fuzz/artifacts/<target>/: copy each into
# fuzz/regressions/<target>/ once fixed, where `cargo test --test fuzz_corpus` replays it.
#
#   setup/fuzz.sh [SECONDS] [TARGET...]      e.g. setup/fuzz.sh 60 image dicom
#
# Needs: ./workbench.sh setup (the venv's libtorch, the sample files), a nightly toolchain
# (`rustup toolchain install nightly`) and cargo-fuzz (installed here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${1:-600}
shift || true
ALL=(project_ron run_files manifest torch_checkpoint safetensors dicom image coco_json voc_xml yolo_txt)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL[@]}"); fi
JOBS=${JOBS:-1}

CACHE=${TRANSFER_WORKBENCH_CACHE:-$HOME/.cache/transfer-workbench}
VENV=$CACHE/venv
TORCH=$("$VENV/bin/python" -c 'import torch, os; print(os.path.dirname(torch.__file__))') || {
    echo "error: no libtorch in $VENV: run ./workbench.sh setup first" >&2
    exit 1
}
export LIBTORCH=$TORCH LD_LIBRARY_PATH=$TORCH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "error: cargo-fuzz needs the nightly toolchain: rustup toolchain install nightly" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

echo "== seeds (stable build of the test that checks them)"
rm -rf fuzz/seeds
FUZZ_SEED_DIR=$PWD/fuzz/seeds cargo test --test fuzz_corpus -- --ignored write_fuzz_seeds --nocapture |
    grep -E '^[a-z_]+: [0-9]+ seeds' || true

echo "== build (nightly, release, no sanitizer: the app's code forbids unsafe)"
(cd fuzz && cargo +nightly fuzz build -s none)
BIN=$PWD/fuzz/target/x86_64-unknown-linux-gnu/release

mkdir -p fuzz/logs
# A scratch folder per run on a tmpfs where there is one (the targets write their input
# to a file for the path-based parsers).
SCRATCH_ROOT=/dev/shm
[ -w "$SCRATCH_ROOT" ] || SCRATCH_ROOT=${TMPDIR:-/tmp}

run_one() {
    local target=$1
    mkdir -p "fuzz/corpus/$target" "fuzz/seeds/$target" "fuzz/artifacts/$target"
    local scratch
    scratch=$(mktemp -d "$SCRATCH_ROOT/tw-fuzz-$target.XXXX")
    # -timeout: one input over 10 s is a hang; -rss_limit_mb: over 2 GB is out of memory.
    # The binary built above, run directly: a later edit of the sources does not rebuild it
    # in the middle of a run.
    if (cd fuzz && TMPDIR=$scratch "$BIN/$target" "corpus/$target" "seeds/$target" \
        -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$target/" -print_final_stats=1) \
        >"fuzz/logs/$target.log" 2>&1; then
        status=ok
    else
        status="FAILED (see fuzz/logs/$target.log and fuzz/artifacts/$target/)"
    fi
    rm -rf "$scratch"
    local execs per_sec corpus
    execs=$(grep -o 'stat::number_of_executed_units:[[:space:]]*[0-9]*' "fuzz/logs/$target.log" | grep -o '[0-9]*$' || echo ?)
    per_sec=$(grep -o 'stat::average_exec_per_sec:[[:space:]]*[0-9]*' "fuzz/logs/$target.log" | grep -o '[0-9]*$' || echo ?)
    corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
    printf '%-17s %s s  %10s execs  %6s/s  corpus %5s  %s\n' \
        "$target" "$SECONDS_EACH" "$execs" "$per_sec" "$corpus" "$status"
}

echo "== run: ${TARGETS[*]}, $SECONDS_EACH s each, $JOBS at a time"
failed=0
running=0
for target in "${TARGETS[@]}"; do
    run_one "$target" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait -n || failed=1
        running=$((running - 1))
    fi
done
while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
done
logs=()
for target in "${TARGETS[@]}"; do logs+=("fuzz/logs/$target.log"); done
if grep -l '==ERROR\|deadly signal\|panicked' "${logs[@]}" 2>/dev/null; then
    echo "some targets found crashes: the logs above" >&2
    exit 1
fi
exit $failed
