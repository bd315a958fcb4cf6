#!/usr/bin/env bash
# Resident memory per registered contact: N agents register once each (SIPp,
# digest), then, once their transactions have expired (Timer J, 32 s), the
# gateway's RSS is compared with its RSS before any registration.
#   scripts/bench-memory.sh [N=10000]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
port=${PORT:-25060}
scripts/install-test-deps.sh >/dev/null
cargo build --release --locked --quiet
work=$(mktemp -d)
trap 'kill $gw 2>/dev/null || true; rm -rf "$work"' EXIT

# The demo configuration plus N agents 200000.. with passwords pw200000..
sed -e "s/\"127.0.0.1:5060\"/\"127.0.0.1:$port\"/" \
    -e "s#var/switchboard.db#$work/sb.db#" \
    -e 's/qualify_interval_secs = 30/qualify_interval_secs = 0/' \
    config/switchboard.toml > "$work/config.toml"
for ((i = 200000; i < 200000 + n; i++)); do
    printf '[[agents]]\nid = "%d"\npassword = "pw%d"\n' "$i" "$i"
done >> "$work/config.toml"
printf 'SEQUENTIAL,PRINTF=%d,PRINTFOFFSET=200000\n%%d;pw%%d;\n' "$n" > "$work/agents.csv"

target/release/switchboard serve --config "$work/config.toml" 2> "$work/gw.log" &
gw=$!
sleep 2
rss() { awk '/VmRSS/ {print $2}' "/proc/$gw/status"; }
before=$(rss)
(cd tests/sipp && sipp -sf register_auth.xml -inf "$work/agents.csv" -i 127.0.0.1 -p $((port + 30)) \
    -mp $((port + 32)) -r 2000 -m "$n" -l 5000 -nostdin -timeout 60s -timeout_error \
    "127.0.0.1:$port" > "$work/sipp.out" 2>&1) || { tail -30 "$work/sipp.out"; exit 1; }
ok=$(awk -F'|' '/Successful call/ {gsub(/ /, "", $3); print $3}' "$work/sipp.out")
sleep 36
after=$(rss)
echo "agents=$n registered=$ok rss_before_kib=$before rss_after_kib=$after bytes_per_contact=$(( (after - before) * 1024 / n ))"
