#!/usr/bin/env bash
# The main job: builds Weir (release), generates a seeded click-stream of 1M events and runs the
# window-stats pipeline over it with a progress bar and a summary. Arguments after the script
# name go to `weir run` (e.g. `--workers 2`).
set -euo pipefail
cd "$(dirname "$0")/.."
events="${WEIR_DEMO_EVENTS:-1000000}"
dir="target/demo"
mkdir -p "$dir"
cargo build --release --locked --quiet
weir="target/release/weir"
input="$dir/clicks-$events.jsonl"
[[ -f "$input" ]] || "$weir" gen --events "$events" --seed 42 --out "$input" --truth "$dir/truth-$events.jsonl"
"$weir" run window-stats --input "$input" --output "$dir/window-stats.jsonl" "$@"
echo "demo: per-item views, clicks and CTR per 60 s window are in $dir/window-stats.jsonl" >&2
head -3 "$dir/window-stats.jsonl" >&2
