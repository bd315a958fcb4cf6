#!/usr/bin/env bash
# Media load (issue 3): PAIRS bridged call pairs through the "*45" pair test
# extension, every call recorded, 20 ms RTP both ways from our generator
# (switchboard-loadgen media; SIPp's RTP is too slow). Measures over the
# steady phase, while every call is up: loss, one-way latency through the
# gateway (G.711 only: payloads are relayed untouched), the gateway's CPU and
# CPU per relayed packet, RSS per call, the generator's CPU, the media
# workers' playback clock lateness, and the recordings written.
#   scripts/bench-media.sh PAIRS [HOLD_SECS=30] [CODEC_A=pcmu CODEC_B=pcmu]
# Environment: SETUP_RATE (call legs started per second, default 200),
# PIN=1 (gateway on core 0, generator on core 1; default: no pinning).
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:?usage: scripts/bench-media.sh PAIRS [HOLD_SECS] [CODEC_A CODEC_B]}
hold=${2:-30}
codec_a=${3:-pcmu}
codec_b=${4:-pcmu}
rate=${SETUP_RATE:-200}
bin=${CARGO_TARGET_DIR:-target}/release

cargo build --release --locked --bins --quiet

work=$(mktemp -d)
gw=
gen=
cleanup() {
    for pid in $gen $gw; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# A UDP+TCP port free on loopback right now (as tests/common/mod.rs does).
free_port() {
    python3 -c '
import socket
for _ in range(100):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
    p = u.getsockname()[1]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
'
}
sip_port=$(free_port)
api_port=$(free_port)

# The demo configuration on free ports, its own store, RTP ports 20000-39999,
# recordings in the temp dir, and the "*45" pair extension recorded.
awk -v port="$sip_port" -v api="$api_port" -v db="$work/sb.db" -v rec="$work/rec" '
    /^\[/ { section = $0; in45 = 0 }
    { gsub(/"127\.0\.0\.1:5060"/, "\"127.0.0.1:" port "\""); gsub(/"127\.0\.0\.1:8080"/, "\"127.0.0.1:" api "\"") }
    /^path = "var\/switchboard.db"/ { print "path = \"" db "\""; next }
    /^level = / && section == "[log]" { print "level = \"info\""; next }
    section == "[media]" && /^rtp_port_(min|max) *=/ { next }
    section == "[recording]" && /^dir *=/ { print "dir = \"" rec "\""; rec_done = 1; next }
    /^\[media\]/ { print; print "rtp_port_min = 20000\nrtp_port_max = 39999"; media_done = 1; next }
    /^extension = "\*45"/ { print; print "record = true"; in45 = 1; ext_done = 1; next }
    in45 && /^record *=/ { next }
    { print }
    END {
        if (!media_done) print "\n[media]\nrtp_port_min = 20000\nrtp_port_max = 39999"
        if (!rec_done) print "\n[recording]\ndir = \"" rec "\""
        if (!ext_done) print "\n[[test_extensions]]\nextension = \"*45\"\naction = \"pair\"\nrecord = true"
    }
' config/switchboard.toml > "$work/config.toml"

# Tables appended at the END must not land inside another table: [media]
# and [recording] are plain tables, so re-check the file parses.
"$bin/switchboard" check-config --config "$work/config.toml" > /dev/null 2> "$work/check.log" ||
    { echo "bench config rejected:"; cat "$work/check.log"; exit 1; }

pin_gw=()
pin_gen=()
if [ "${PIN:-0}" = 1 ]; then pin_gw=(taskset -c 0); pin_gen=(taskset -c 1); fi

# wait_for FILE PATTERN SECONDS PID: until FILE matches, PID dies, or time is up.
wait_for() {
    local end=$((SECONDS + $3))
    while ! grep -q "$2" "$1" 2>/dev/null; do
        if [ $SECONDS -ge $end ] || ! kill -0 "$4" 2>/dev/null; then return 1; fi
        sleep 0.2
    done
}
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
now() { date +%s.%N; }

"${pin_gw[@]}" "$bin/switchboard" serve --config "$work/config.toml" > /dev/null 2> "$work/gw.log" &
gw=$!
wait_for "$work/gw.log" "registrations restored" 20 "$gw" ||
    { echo "gateway did not start:"; tail -20 "$work/gw.log"; exit 1; }
rss_idle=$(rss_kib "$gw")

"${pin_gen[@]}" "$bin/switchboard-loadgen" media --target "127.0.0.1:$sip_port" --user 1001 \
    --password pass1001 --pairs "$pairs" --setup-rate "$rate" --hold-secs "$hold" \
    --codec-a "$codec_a" --codec-b "$codec_b" > "$work/gen.out" 2>&1 &
gen=$!
setup_timeout=$((pairs * 2 / rate + 60))
wait_for "$work/gen.out" "^STEADY start" "$setup_timeout" "$gen" ||
    { echo "calls were not set up in ${setup_timeout} s:"; cat "$work/gen.out"; tail -20 "$work/gw.log"; exit 1; }
t0=$(now)
gw0=$(cpu_ticks "$gw")
gen0=$(cpu_ticks "$gen")
# RSS at full load: the highest of one sample a second over the steady phase.
rss_load=0
end=$((SECONDS + hold + 30))
while ! grep -q "^STEADY end" "$work/gen.out"; do
    if [ $SECONDS -ge $end ] || ! kill -0 "$gen" 2>/dev/null; then
        echo "generator stopped before the end of the steady phase:"; cat "$work/gen.out"; exit 1
    fi
    r=$(rss_kib "$gw")
    [ "$r" -gt "$rss_load" ] && rss_load=$r
    sleep 1
done
t1=$(now)
gw1=$(cpu_ticks "$gw")
gen1=$(cpu_ticks "$gen")

# Teardown: BYEs at twice the setup rate, then up to 32 s of retransmissions.
gen_deadline=$((SECONDS + pairs * 2 / rate + 60))
while kill -0 "$gen" 2>/dev/null && [ $SECONDS -lt $gen_deadline ]; do sleep 0.5; done
if kill -0 "$gen" 2>/dev/null; then echo "generator did not finish its teardown"; kill "$gen"; fi
wait "$gen" 2>/dev/null || true
gen=
# Let the recorder close the last files, then stop the gateway (SIGTERM,
# bounded).
sleep 2
kill -TERM "$gw" 2>/dev/null || true
for _ in $(seq 1 75); do kill -0 "$gw" 2>/dev/null || break; sleep 0.2; done
kill -KILL "$gw" 2>/dev/null || true
wait "$gw" 2>/dev/null || true
gw=

result=$(grep '^RESULT' "$work/gen.out" || true)
[ -n "$result" ] || { echo "no RESULT from the generator:"; cat "$work/gen.out"; exit 1; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<< "$result"; }
legs_up=$(field legs_up)
tck=$(getconf CLK_TCK)
window=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')
gw_cpu_s=$(awk -v d=$((gw1 - gw0)) -v t="$tck" 'BEGIN {print d / t}')
gen_cpu_s=$(awk -v d=$((gen1 - gen0)) -v t="$tck" 'BEGIN {print d / t}')
# Packets the gateway relayed in the window: every leg up sends 50 a second.
relayed=$(awk -v l="$legs_up" -v w="$window" 'BEGIN {print l * 50 * w}')
# Playback clock lateness: late_p99_us of every worker stats line of a
# worker with sessions, summarised as median and worst.
late_values=$(sed 's/\x1b\[[0-9;]*m//g' "$work/gw.log" | sed -n 's/.*media worker stats.* sessions=\([0-9]*\) .*late_p99_us=\([0-9]*\).*/\1 \2/p' |
    awk '$1 > 0 {print $2}' | sort -n)
if [ -z "$late_values" ]; then
    late_p99="n/a (no media worker stats line with sessions)"
else
    late_p99=$(awk '{v[NR] = $1} END {printf "median %d µs, worst %d µs over %d worker stats lines", v[int((NR + 1) / 2)], v[NR], NR}' <<< "$late_values")
fi
wavs=$(find "$work/rec" -name '*.wav' 2> /dev/null | wc -l)
rec_bytes=$(find "$work/rec" -type f -printf '%s\n' 2> /dev/null | awk '{s += $1} END {print s + 0}')

sed -n '/^media load:/,/^RESULT/p' "$work/gen.out"
awk -v pairs="$pairs" -v a="$codec_a" -v b="$codec_b" -v w="$window" -v gw="$gw_cpu_s" -v gen="$gen_cpu_s" \
    -v rel="$relayed" -v ri="$rss_idle" -v rl="$rss_load" -v legs="$legs_up" -v late="$late_p99" \
    -v wavs="$wavs" -v rb="$rec_bytes" -v loss="$(field loss_pct)" -v p50="$(field lat_p50_ms)" \
    -v p99="$(field lat_p99_ms)" 'BEGIN {
    printf "== bench-media: %d pairs (%s <-> %s), steady window %.1f s ==\n", pairs, a, b, w
    printf "loss                      %s %%\n", loss
    printf "latency one-way p50/p99   %s / %s ms\n", p50, p99
    printf "gateway CPU               %.1f %% of one core\n", gw * 100 / w
    printf "CPU per relayed packet    %.2f µs (gateway CPU / %d legs x 50 packets/s)\n", (rel > 0 ? gw * 1e6 / rel : 0), legs
    printf "gateway RSS               %.1f MiB idle, %.1f MiB at full load, %.1f KiB per call (pair)\n", ri / 1024, rl / 1024, (pairs > 0 ? (rl - ri) / pairs : 0)
    printf "generator CPU             %.1f %% of one core\n", gen * 100 / w
    printf "playback clock p99 late   %s\n", late
    printf "recordings written        %d WAV files, %.1f MiB in all (with sidecars)\n", wavs, rb / 1048576
}'
