#!/usr/bin/env bash
# Puts the official ONNX Runtime 1.31.1 CPU library at .cache/onnxruntime/libonnxruntime.so.1.31.1:
# downloads the pinned `onnxruntime` wheel from PyPI with pip, extracts the library, checks its
# sha256. The engine looks there (or at $ORT_DYLIB_PATH). Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="$root/.cache/onnxruntime"
lib="$dir/libonnxruntime.so.1.31.1"
sha="fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3"
if [[ -f "$lib" ]] && echo "$sha  $lib" | sha256sum --check --status; then
    exit 0
fi
mkdir -p "$dir"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "setup: downloading onnxruntime 1.31.1 wheel" >&2
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.11 --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 \
    -d "$tmp" onnxruntime==1.31.1
wheel="$(ls "$tmp"/onnxruntime-1.31.1-*.whl | head -1)"
python3 - "$wheel" "$tmp/lib" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    data = z.read("onnxruntime/capi/libonnxruntime.so.1.31.1")
open(sys.argv[2], "wb").write(data)
PY
echo "$sha  $tmp/lib" | sha256sum --check --status || { echo "setup: onnxruntime library checksum mismatch" >&2; exit 1; }
mv "$tmp/lib" "$lib"
echo "setup: $lib" >&2
