#!/usr/bin/env bash
# transfer-workbench's two entry points for a newcomer (see README.md):
#   ./workbench.sh app    set everything up (first time), then open the workbench on the demo projects
#   ./workbench.sh test   set everything up (first time), then run the whole test suite
#   ./workbench.sh setup  only the set-up (system packages, libtorch, assets); a no-op when done
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
command -v cargo >/dev/null 2>&1 || { echo "workbench.sh: Rust (cargo) is needed: install it from https://rustup.rs" >&2; exit 1; }

setup() {
    local line
    line=$(bash setup/setup.sh | tail -n 1)
    case "$line" in
        LIBTORCH=*) export "${line?}" ;;
        *) echo "workbench.sh: set-up did not report a libtorch location" >&2; exit 1 ;;
    esac
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
    setup)
        setup
        echo "$LIBTORCH" ;;
    app)
        setup
        exec cargo run --quiet -- gui "$@" ;;
    test)
        setup
        cargo fmt --all -- --check
        cargo clippy --all-targets --quiet -- -D warnings
        cargo test "$@"
        # Without arguments: the tests whose numbers depend on the CPU's bf16 path run again
        # on the path(s) this machine does not take by default (see README, "CPU paths").
        if [ $# -eq 0 ]; then bash setup/other_cpu_paths.sh; fi ;;
    *)
        echo "usage: ./workbench.sh app|test|setup" >&2
        exit 2 ;;
esac
