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
# PIN=1 (gateway on core 0, generator on core 1; default: no pinning),
# RECORD=0 (the "*45" calls are not recorded, as a relay like rtpengine's
# does not record; default 1), REALTIME=0 (media workers at nice -11 instead
# of SCHED_FIFO, media.realtime = false; default 1: the generator's
# receivers are then real-time too, so that their reads are not delayed by
# the gateway's priority and billed to it as latency).
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

. scripts/lib-bench-media.sh

sip_port=$(free_port)
api_port=$(free_port)

# The demo configuration on free ports, its own store, RTP ports 20000-39999,
# recordings in the temp dir, and the "*45" pair extension recorded unless
# RECORD=0.
record=true
[ "${RECORD:-1}" = 0 ] && record=false
realtime=true
gen_rt=(--realtime-receivers)
if [ "${REALTIME:-1}" = 0 ]; then realtime=false; gen_rt=(); fi
awk -v record="$record" -v realtime="$realtime" -v port="$sip_port" -v api="$api_port" -v db="$work/sb.db" -v rec="$work/rec" '
    /^\[/ { section = $0; in45 = 0 }
    { gsub(/"127\.0\.0\.1:5060"/, "\"127.0.0.1:" port "\""); gsub(/"127\.0\.0\.1:8080"/, "\"127.0.0.1:" api "\"") }
    /^path = "var\/switchboard.db"/ { print "path = \"" db "\""; next }
    /^level = / && section == "[log]" { print "level = \"info\""; next }
    section == "[media]" && /^rtp_port_(min|max) *=/ { next }
    section == "[recording]" && /^dir *=/ { print "dir = \"" rec "\""; rec_done = 1; next }
    section == "[media]" && /^realtime *=/ { next }
    /^\[media\]/ { print; print "rtp_port_min = 20000\nrtp_port_max = 39999\nrealtime = " realtime; media_done = 1; next }
    /^extension = "\*45"/ { print; print "record = " record; in45 = 1; ext_done = 1; next }
    in45 && /^record *=/ { next }
    { print }
    END {
        if (!media_done) print "\n[media]\nrtp_port_min = 20000\nrtp_port_max = 39999\nrealtime = " realtime
        if (!rec_done) print "\n[recording]\ndir = \"" rec "\""
        if (!ext_done) print "\n[[test_extensions]]\nextension = \"*45\"\naction = \"pair\"\nrecord = " record
    }
' config/switchboard.toml > "$work/config.toml"

# Tables appended at the END must not land inside another table: [media]
# and [recording] are plain tables, so re-check the file parses.
"$bin/switchboard" check-config --config "$work/config.toml" > /dev/null 2> "$work/check.log" ||
    { echo "bench config rejected:"; cat "$work/check.log"; exit 1; }

"${pin_relay[@]}" "$bin/switchboard" serve --config "$work/config.toml" > /dev/null 2> "$work/gw.log" &
gw=$!
wait_for "$work/gw.log" "registrations restored" 20 "$gw" ||
    { echo "gateway did not start:"; tail -20 "$work/gw.log"; exit 1; }
rss_idle=$(rss_kib "$gw")

"${pin_gen[@]}" "$bin/switchboard-loadgen" media --target "127.0.0.1:$sip_port" --user 1001 \
    --password pass1001 --pairs "$pairs" --setup-rate "$rate" --hold-secs "$hold" \
    --codec-a "$codec_a" --codec-b "$codec_b" "${gen_rt[@]}" > "$work/gen.out" 2>&1 &
gen=$!
setup_timeout=$((pairs * 2 / rate + 60))
wait_for "$work/gen.out" "^STEADY start" "$setup_timeout" "$gen" ||
    { echo "calls were not set up in ${setup_timeout} s:"; cat "$work/gen.out"; tail -20 "$work/gw.log"; exit 1; }
relay=$gw
measure_steady

# Teardown: BYEs at twice the setup rate, then up to 32 s of retransmissions.
wait_generator $((pairs * 2 / rate + 60))
# Let the recorder close the last files, then stop the gateway (SIGTERM,
# bounded).
sleep 2
kill -TERM "$gw" 2>/dev/null || true
for _ in $(seq 1 75); do kill -0 "$gw" 2>/dev/null || break; sleep 0.2; done
kill -KILL "$gw" 2>/dev/null || true
wait "$gw" 2>/dev/null || true
gw=

summarize bench-media gateway "$pairs" "$codec_a" "$codec_b" "$rss_idle"
# Playback clock lateness: late_p99_us of every worker stats line of a
# worker with sessions, summarised as median and worst.
late_values=$(sed 's/\x1b\[[0-9;]*m//g' "$work/gw.log" | sed -n 's/.*media worker stats.* sessions=\([0-9]*\) .*late_p99_us=\([0-9]*\).*/\1 \2/p' |
    awk '$1 > 0 {print $2}' | sort -n)
if [ -z "$late_values" ]; then
    late_p99="n/a (no media worker stats line with sessions)"
else
    late_p99=$(awk '{v[NR] = $1} END {printf "median %d µs, worst %d µs over %d worker stats lines", v[int((NR + 1) / 2)], v[NR], NR}' <<< "$late_values")
fi
# The longest tick per worker stats line (while it runs, packets wait).
tick_values=$(sed 's/\x1b\[[0-9;]*m//g' "$work/gw.log" | sed -n 's/.*media worker stats.* sessions=\([0-9]*\) .*tick_max_us=\([0-9]*\).*/\1 \2/p' |
    awk '$1 > 0 {print $2}' | sort -n)
tick_max=$(awk '{v[NR] = $1} END {if (NR) printf "median %d µs, worst %d µs", v[int((NR + 1) / 2)], v[NR]; else print "n/a"}' <<< "$tick_values")
wavs=$(find "$work/rec" -name '*.wav' 2> /dev/null | wc -l || true)
rec_bytes=$(find "$work/rec" -type f -printf '%s\n' 2> /dev/null | awk '{s += $1} END {print s + 0}' || true)

# The whole run's lateness histogram: the late_hist of every worker stats
# line taken while that worker held all its sessions (its largest count, so
# set-up and teardown windows do not dilute it), summed; its p99 is the upper
# bound of the bucket holding it (the buckets are LATENESS_BUCKETS_US in
# src/media/pacer.rs).
bounds="100 250 500 750 1000 1500 2000 5000 10000 20000 50000 100000"
late_run=$(sed 's/\x1b\[[0-9;]*m//g' "$work/gw.log" | grep 'media worker stats' |
    sed -n 's/.*worker=\([0-9]*\) sessions=\([0-9]*\) .*late_hist=\([0-9,]*\).*/\1 \2 \3/p' |
    awk -v bounds="$bounds" '
        { w[NR] = $1; s[NR] = $2; h[NR] = $3; if ($2 > max[$1]) max[$1] = $2 }
        END {
            nb = split(bounds, b, " ")
            for (i = 1; i <= NR; i++) {
                if (s[i] == 0 || s[i] < max[w[i]]) continue
                windows++
                n = split(h[i], c, ",")
                for (k = 1; k <= n; k++) { sum[k] += c[k]; total += c[k] }
            }
            if (total == 0) { print "n/a (no full-load worker stats line)"; exit }
            seen = 0
            for (k = 1; k <= nb + 1; k++) {
                seen += sum[k]
                if (k <= nb && k <= 5) under1ms = seen
                if (p99 == "" && seen >= 0.99 * total) p99 = (k <= nb) ? "< " b[k] " µs" : ">= 100 ms"
            }
            printf "p99 %s over %d ticks in %d full-load windows; %.3f %% of ticks 1 ms late or more", p99, total, windows, 100 * (total - under1ms) / total
        }')
printf "playback clock p99 late   %s (per window)\n" "$late_p99"
printf "playback clock, whole run %s\n" "$late_run"
printf "longest tick per window   %s\n" "$tick_max"
# What the recorder could not keep up with: chunks dropped from its full
# queue (padded with silence in the files), summed over the sidecars.
dropped=$(find "$work/rec" -name '*.json' -exec cat {} + 2> /dev/null |
    sed -n 's/.*"dropped_chunks": *\([0-9]*\).*/\1/p' | awk '{s += $1} END {print s + 0}')
awk -v wavs="$wavs" -v rb="$rec_bytes" -v record="$record" -v dropped="$dropped" 'BEGIN {
    printf "recordings written        %d WAV files, %.1f MiB in all (with sidecars; record = %s), %d chunks dropped by the recorder\n", wavs, rb / 1048576, record, dropped
}'
