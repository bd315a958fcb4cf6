#!/usr/bin/env bash
# Registrar throughput with our own load generator (SIPp saturates its core
# near 15,000 registrations/s): a fresh gateway per rate, pinned to core 0,
# the generator on core 1; reports the gateway's CPU per registration.
#   scripts/bench-loadgen.sh [RATE...]   (default 10000 20000 30000)
set -euo pipefail
cd "$(dirname "$0")/.."
rates=("${@:-10000 20000 30000}")
read -r -a rates <<< "${rates[*]}"
cargo build --release --locked --quiet
work=$(mktemp -d)
gw=
trap '[ -n "$gw" ] && kill "$gw" 2>/dev/null; rm -rf "$work"' EXIT
port=${PORT:-25160}
sed -e "s/\"127.0.0.1:5060\"/\"127.0.0.1:$port\"/" -e "s#var/switchboard.db#$work/sb.db#" \
    config/switchboard.toml > "$work/config.toml"
echo "| rate asked | registrations | ok | failed | achieved/s | p50 ms | p99 ms | gateway CPU µs/registration | gateway RSS MiB |"
echo "|---|---|---|---|---|---|---|---|---|"
for rate in "${rates[@]}"; do
    rm -f "$work"/sb.db*
    taskset -c 0 target/release/switchboard serve --config "$work/config.toml" 2> "$work/gw.log" &
    gw=$!
    sleep 1
    before=$(awk '{print $14 + $15}' "/proc/$gw/stat")
    count=$((rate * 6))
    out=$(taskset -c 1 target/release/switchboard-loadgen register --target "127.0.0.1:$port" \
        --rate "$rate" --count "$count" || true)
    after=$(awk '{print $14 + $15}' "/proc/$gw/stat")
    rss=$(awk '/VmRSS/ {printf "%d", $2 / 1024}' "/proc/$gw/status")
    kill "$gw"; wait "$gw" 2>/dev/null || true; gw=
    field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<< "$out"; }
    tick_us=$((1000000 / $(getconf CLK_TCK)))
    echo "| $rate | $count | $(field ok) | $(( $(field failed) + $(field timed_out) )) | $(field achieved_per_s) | $(field latency_ms_p50) | $(field p99) | $(( (after - before) * tick_us / count )) | $rss |"
done
