#!/usr/bin/env bash
# Measures the resident memory of `signalpost serve` on the embedded default (SQLite, bundled replay at the
# default 20 candles/s, no trades) once it is up: 20 samples of VmRSS, one every 250 ms, after a 2 s settle.
# Prints the median and the maximum in MB. Usage: scripts/idle-rss.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
bin="$PWD/target/release/signalpost"
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
cd "$dir"
SIGNALPOST_BIND=127.0.0.1:0 RUST_LOG=warn "$bin" serve > out.txt &
pid=$!
for _ in $(seq 1 100); do grep -q listening out.txt 2>/dev/null && break; sleep 0.1; done
sleep 2
samples=()
for _ in $(seq 1 20); do
  samples+=("$(awk '/VmRSS/ {print $2}' /proc/$pid/status)")
  sleep 0.25
done
printf '%s\n' "${samples[@]}" | sort -n | awk '{a[NR]=$1} END {printf "idle serve RSS: median %.1f MB, max %.1f MB over %d samples\n", a[int((NR+1)/2)]/1024, a[NR]/1024, NR}'
