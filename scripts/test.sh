#!/usr/bin/env bash
# The one command that runs Weir's tests: fetches what they need, starts the services they
# use, runs the whole test suite, and stops the services again (also when tests fail).
set -euo pipefail
cd "$(dirname "$0")/.."

# --- setup: each step is idempotent and fetches only what is missing ---------------------
scripts/setup/onnxruntime.sh   # ONNX Runtime library -> .cache/onnxruntime/
scripts/setup/python.sh        # reference Python (onnxruntime, onnx, tokenizers) -> .cache/venv/
scripts/setup/models.sh        # MiniLM int8 encoder + tokenizer (checksummed) -> models/minilm/

# --- services -----------------------------------------------------------------------------
cleanup() {
    scripts/kafka/stop.sh || true
}
trap cleanup EXIT
scripts/kafka/start.sh         # Apache Kafka broker (jars via Maven) on 127.0.0.1:${WEIR_KAFKA_PORT:-9092}
export WEIR_KAFKA_BOOTSTRAP="127.0.0.1:${WEIR_KAFKA_PORT:-9092}"

# --- the tests ----------------------------------------------------------------------------
cargo test --workspace --all-targets --locked --no-fail-fast "$@"
cargo test --workspace --doc --locked
