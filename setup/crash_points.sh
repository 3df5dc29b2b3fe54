#!/usr/bin/env bash
# Runs every kill point of tests/crash_points.rs (the normal test run takes a seeded subset):
#   setup/crash_points.sh [SEED]
# LIBTORCH must be set as for cargo. Prints each point, what was killed where, and the total.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CRASH_POINTS=all CRASH_POINTS_SEED="${1:-19}" \
    cargo test --test crash_points -- --nocapture --test-threads 1
