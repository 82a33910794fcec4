#!/usr/bin/env bash
# Usage: replay_time.sh BINARY RUNS — unpaced replay of the bundled data on a fresh SQLite file; prints the
# seconds from process start until /metrics shows replay_finished 1, one line per run.
set -euo pipefail
bin=$1; runs=${2:-5}
for i in $(seq "$runs"); do
  dir=$(mktemp -d)
  cd "$dir"
  start=$(date +%s.%N)
  env -i PATH="$PATH" HOME="$HOME" DATABASE_URL="sqlite://$dir/signalpost.db" SIGNALPOST_BIND=127.0.0.1:0 \
      SIGNALPOST_REPLAY_SPEED=0 RUST_LOG=warn "$bin" serve > out.txt 2> err.txt &
  pid=$!
  addr=""
  while [ -z "$addr" ]; do addr=$(grep -o 'http://[0-9.:]*' out.txt 2>/dev/null | head -1 || true); sleep 0.02; done
  while ! curl -s "$addr/metrics" | grep -Eq '^(signalpost_)?replay_finished 1'; do sleep 0.02; done
  end=$(date +%s.%N)
  candles=$(curl -s "$addr/metrics" | grep -E '^(signalpost_)?candles_closed_total' | awk '{print $2}')
  stored=""
  kill "$pid"; wait "$pid" 2>/dev/null || true
  if command -v sqlite3 >/dev/null; then stored=$(sqlite3 signalpost.db 'select count(*) from candles' 2>/dev/null || echo "-"); fi
  echo "run $i: $(echo "$end - $start" | bc) s, candles_closed_total=$candles, stored=$stored"
  cd /; rm -rf "$dir"
done
