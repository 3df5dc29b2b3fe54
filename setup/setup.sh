#!/usr/bin/env bash
# transfer-workbench: install system packages, the python venv and all assets
# into a per-user cache.  Idempotent: a repeat run only checks stamps.
#
#   eval "export $(setup/setup.sh | tail -n1)"     # -> LIBTORCH=.../site-packages/torch
#
# Cache root: $TRANSFER_WORKBENCH_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/transfer-workbench
#   venv/       python venv (torch, torchvision, ... see setup/assets.toml [venv])
#   downloads/  wheels and .debs, as downloaded
#   assets/     extracted / verified / converted results; assets/ASSETS_OK is written last
#
# Environment:
#   TRANSFER_WORKBENCH_CACHE   cache root (see above)
#   TRANSFER_WORKBENCH_PYTHON  python (>= 3.11) used to create the venv (default python3)
#   TRANSFER_WORKBENCH_SKIP_SYSTEM=1   do not check/install Debian system packages
#   LIBTORCH                   if set, printed as is instead of the venv's torch dir
#
# Only the final `LIBTORCH=...` line goes to stdout; everything else to stderr.
set -euo pipefail

exec 3>&1 1>&2   # fd 3 = real stdout (only for the final line); stdout -> stderr

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${TRANSFER_WORKBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/transfer-workbench}"
PYTHON="${TRANSFER_WORKBENCH_PYTHON:-python3}"
VENV="$CACHE/venv"

now() { printf '%s' "${EPOCHREALTIME:-$(date +%s.%N)}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*"; exit 1; }

T_ALL=$(now)
STEP_TIMES=()
step_done() { STEP_TIMES+=("$1 $(since "$2")s"); }

mkdir -p "$CACHE"
# One setup at a time per cache.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE/.setup.lock"
    if ! flock -n 9; then
        say "another setup is running on $CACHE; waiting for it"
        flock 9
    fi
fi
SUMMARY="$(mktemp "${TMPDIR:-/tmp}/tw-setup-summary.XXXXXX")"
trap 'rm -f "$SUMMARY"' EXIT

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found; install python3 (>= 3.11)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$PYTHON is $("$PYTHON" -V 2>&1); need python >= 3.11 (set TRANSFER_WORKBENCH_PYTHON)"

# ------------------------------------------------------------------ system --
# Alternatives separated by '|' (first one apt knows is installed).
SYSTEM_PKGS=(xvfb libgl1-mesa-dri libegl1 libgl1 libxkbcommon-x11-0 libx11-xcb1
             libxcursor1 libxi6 libxrandr2 "libgtk-3-0t64|libgtk-3-0")

is_installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

system_packages() {
    if [ "${TRANSFER_WORKBENCH_SKIP_SYSTEM:-0}" = 1 ]; then
        say "skip system packages (TRANSFER_WORKBENCH_SKIP_SYSTEM=1)"; return 0
    fi
    if ! command -v dpkg-query >/dev/null 2>&1; then
        say "not a Debian-based system: make sure these (or equivalents) are installed yourself:"
        say "  ${SYSTEM_PKGS[*]//|/ or } python3-venv"
        return 0
    fi
    local missing=() spec alt found
    for spec in "${SYSTEM_PKGS[@]}"; do
        found=0
        IFS='|' read -ra alts <<<"$spec"
        for alt in "${alts[@]}"; do is_installed "$alt" && { found=1; break; }; done
        [ $found = 1 ] || missing+=("$spec")
    done
    if [ ! -x "$VENV/bin/python" ] && ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        missing+=(python3-venv)
    fi
    if [ ${#missing[@]} -eq 0 ]; then
        say "skip system packages: all ${#SYSTEM_PKGS[@]} installed"; return 0
    fi
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            say "WARNING: missing Debian packages: ${missing[*]//|/ or }"
            say "         not root and no password-less sudo; install them with:"
            say "         sudo apt-get install --no-install-recommends ${missing[*]//|*/}"
            say "         (the GUI needs them; continuing with the venv and assets)"
            return 0
        fi
    fi
    say "installing missing Debian packages: ${missing[*]//|/ or }"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get -q update || die "apt-get update failed (apt repository unreachable?) while installing: ${missing[*]}"
    local pkgs=() cand
    for spec in "${missing[@]}"; do
        IFS='|' read -ra alts <<<"$spec"
        cand=""
        for alt in "${alts[@]}"; do
            if [ -n "$(apt-cache policy "$alt" 2>/dev/null | awk '/Candidate:/ && $2 != "(none)" {print $2}')" ]; then
                cand=$alt; break
            fi
        done
        [ -n "$cand" ] || die "Debian package ${spec//|/ or } not found by apt (apt-cache policy has no candidate)"
        pkgs+=("$cand")
    done
    "${sudo[@]}" apt-get -q install -y --no-install-recommends "${pkgs[@]}" \
        || die "apt-get install failed for: ${pkgs[*]}"
}

T=$(now); say "== system packages"; system_packages; step_done system "$T"

# -------------------------------------------------------------------- venv --
T=$(now); say "== python venv ($VENV)"
"$PYTHON" "$HERE/fetch_assets.py" venv --cache "$CACHE" --summary-file "$SUMMARY" \
    || die "venv step failed (see messages above)"
step_done venv "$T"

# ------------------------------------------------------------------ assets --
T=$(now); say "== assets ($CACHE/assets)"
"$VENV/bin/python" "$HERE/fetch_assets.py" assets --cache "$CACHE" --summary-file "$SUMMARY" \
    || die "assets step failed (see messages above); nothing incomplete was marked done, rerun to continue"
step_done assets "$T"

[ -f "$CACHE/assets/ASSETS_OK" ] || die "assets/ASSETS_OK missing after the assets step"

# ------------------------------------------------------------------ result --
TORCH_DIR="$("$VENV/bin/python" -c 'import importlib.util as u; print(u.find_spec("torch").submodule_search_locations[0])')" \
    || die "cannot locate torch in $VENV"
if [ -n "${LIBTORCH:-}" ]; then
    say "LIBTORCH is set by you ($LIBTORCH); keeping it (the venv's torch is $TORCH_DIR)"
    OUT_LIBTORCH="$LIBTORCH"
else
    OUT_LIBTORCH="$TORCH_DIR"
fi

downloads=$(awk '/_downloads /{s+=$2} END{print s+0}' "$SUMMARY")
built=$(awk '/^assets_built /{s+=$2} END{print s+0}' "$SUMMARY")
venv_built=$(awk '/^venv_built /{s+=$2} END{print s+0}' "$SUMMARY")
if [ "$built" = 0 ]; then what="all assets present"; else what="$built asset group(s) built"; fi
[ "$venv_built" = 0 ] || what="venv updated, $what"
say "steps: ${STEP_TIMES[*]}"
say "$downloads downloads, $what ($(since "$T_ALL") s)"
printf 'LIBTORCH=%q\n' "$OUT_LIBTORCH" >&3
