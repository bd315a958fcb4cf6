#!/usr/bin/env bash
# The media load of bench-media.sh relayed by rtpengine instead of our
# gateway, for a like-for-like comparison: the same generator
# (switchboard-loadgen media --rtpengine, which sets each pair up over
# rtpengine's ng control protocol instead of SIP), the same RTP, the same
# measurements (loss, one-way latency, relay CPU per packet, RSS per call).
# rtpengine runs in userspace only (--table=-1: no kernel forwarding) and
# records nothing; compare with RECORD=0 scripts/bench-media.sh.
#   scripts/bench-rtpengine.sh PAIRS [HOLD_SECS=30]
# Environment: SETUP_RATE (call legs started per second, default 200),
# PIN=1 (rtpengine on core 0, generator on core 1; default: no pinning).
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:?usage: scripts/bench-rtpengine.sh PAIRS [HOLD_SECS]}
hold=${2:-30}
rate=${SETUP_RATE:-200}
bin=${CARGO_TARGET_DIR:-target}/release

if ! command -v rtpengine > /dev/null; then
    # The package enables and starts a system service; the bench runs its
    # own daemon, so keep the service from starting (policy-rc.d 101) and
    # disable it afterwards.
    policy=/usr/sbin/policy-rc.d
    saved=
    if [ -e "$policy" ]; then saved=$(mktemp); cp -p "$policy" "$saved"; fi
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
    status=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends rtpengine-daemon > /dev/null || status=$?
    if [ -n "$saved" ]; then mv "$saved" "$policy"; else rm -f "$policy"; fi
    [ "$status" = 0 ] || { echo "cannot install rtpengine-daemon"; exit 1; }
    if command -v systemctl > /dev/null; then
        systemctl disable --now rtpengine-daemon.service > /dev/null 2>&1 || true
    fi
fi

cargo build --release --locked --bin switchboard-loadgen --quiet

work=$(mktemp -d)
relay=
gen=
cleanup() {
    for pid in $gen $relay; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

. scripts/lib-bench-media.sh

ng_port=$(free_port)
# No config file (the package's would add its own interfaces and ports).
# Its default log level logs per ng command, not per packet, so the steady
# phase is not affected.
"${pin_relay[@]}" rtpengine --config-file=none --foreground --table=-1 --interface=127.0.0.1 \
    --listen-ng="127.0.0.1:$ng_port" --port-min=40000 --port-max=59999 --log-stderr \
    > /dev/null 2> "$work/rtpengine.log" &
relay=$!
wait_for "$work/rtpengine.log" "Startup complete" 20 "$relay" ||
    { echo "rtpengine did not start:"; tail -20 "$work/rtpengine.log"; exit 1; }
rss_idle=$(rss_kib "$relay")

"${pin_gen[@]}" "$bin/switchboard-loadgen" media --rtpengine "127.0.0.1:$ng_port" \
    --pairs "$pairs" --setup-rate "$rate" --hold-secs "$hold" > "$work/gen.out" 2>&1 &
gen=$!
setup_timeout=$((pairs * 2 / rate + 60))
wait_for "$work/gen.out" "^STEADY start" "$setup_timeout" "$gen" ||
    { echo "calls were not set up in ${setup_timeout} s:"; cat "$work/gen.out"; tail -20 "$work/rtpengine.log"; exit 1; }
measure_steady

# Teardown: one ng "delete" per call.
wait_generator $((pairs * 2 / rate + 60))
kill -TERM "$relay" 2>/dev/null || true
for _ in $(seq 1 75); do kill -0 "$relay" 2>/dev/null || break; sleep 0.2; done
kill -KILL "$relay" 2>/dev/null || true
wait "$relay" 2>/dev/null || true
relay=

summarize bench-rtpengine rtpengine "$pairs" pcmu pcmu "$rss_idle"
echo "rtpengine warnings/errors logged: $(grep -cE 'WARNING|ERR|CRIT' "$work/rtpengine.log" || true)"
# The commonest, without the time stamp and call id, so they group.
grep -E 'WARNING|ERR|CRIT' "$work/rtpengine.log" | sed 's/^\[[0-9.]*\] //; s/\[lgr-[^]]*\]: //' |
    sort | uniq -c | sort -rn | head -3 || true
