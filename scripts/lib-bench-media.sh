# Shared by bench-media.sh (our gateway) and bench-rtpengine.sh (rtpengine
# driven by the same generator): sourced, not run. Expects $work (temp dir)
# and, for measure_steady, $gen (generator pid), $relay (relay pid), $hold.

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

# PIN=1: the relay on core 0, the generator on core 1.
pin_relay=()
pin_gen=()
if [ "${PIN:-0}" = 1 ]; then pin_relay=(taskset -c 0); pin_gen=(taskset -c 1); fi

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

# measure_steady: from the generator's "STEADY start" to its "STEADY end",
# the relay's and generator's CPU (utime+stime) and the relay's highest RSS
# (one sample a second). Sets t0 t1 relay0 relay1 gen0 gen1 rss_load.
measure_steady() {
    t0=$(now)
    relay0=$(cpu_ticks "$relay")
    gen0=$(cpu_ticks "$gen")
    rss_load=0
    local end=$((SECONDS + hold + 30)) r
    while ! grep -q "^STEADY end" "$work/gen.out"; do
        if [ $SECONDS -ge $end ] || ! kill -0 "$gen" 2>/dev/null; then
            echo "generator stopped before the end of the steady phase:"; cat "$work/gen.out"; exit 1
        fi
        r=$(rss_kib "$relay")
        [ "$r" -gt "$rss_load" ] && rss_load=$r
        sleep 1
    done
    t1=$(now)
    relay1=$(cpu_ticks "$relay")
    gen1=$(cpu_ticks "$gen")
}

# wait_generator SECONDS: lets the generator finish its teardown.
wait_generator() {
    local deadline=$((SECONDS + $1))
    while kill -0 "$gen" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
    if kill -0 "$gen" 2>/dev/null; then echo "generator did not finish its teardown"; kill "$gen"; fi
    wait "$gen" 2>/dev/null || true
    gen=
}

# summarize NAME RELAY_LABEL PAIRS CODEC_A CODEC_B RSS_IDLE: the generator's
# report and the common summary block. Sets result, legs_up, window.
summarize() {
    result=$(grep '^RESULT' "$work/gen.out" || true)
    [ -n "$result" ] || { echo "no RESULT from the generator:"; cat "$work/gen.out"; exit 1; }
    legs_up=$(field legs_up)
    local tck relay_cpu_s gen_cpu_s relayed
    tck=$(getconf CLK_TCK)
    window=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')
    relay_cpu_s=$(awk -v d=$((relay1 - relay0)) -v t="$tck" 'BEGIN {print d / t}')
    gen_cpu_s=$(awk -v d=$((gen1 - gen0)) -v t="$tck" 'BEGIN {print d / t}')
    # Packets relayed in the window: every leg up sends 50 a second.
    relayed=$(awk -v l="$legs_up" -v w="$window" 'BEGIN {print l * 50 * w}')
    sed -n '/^media load:/,/^RESULT/p' "$work/gen.out"
    awk -v name="$1" -v who="$2" -v pairs="$3" -v a="$4" -v b="$5" -v ri="$6" -v w="$window" \
        -v gw="$relay_cpu_s" -v gen="$gen_cpu_s" -v rel="$relayed" -v rl="$rss_load" -v legs="$legs_up" \
        -v loss="$(field loss_pct)" -v p50="$(field lat_p50_ms)" -v p99="$(field lat_p99_ms)" 'BEGIN {
        printf "== %s: %d pairs (%s <-> %s), steady window %.1f s ==\n", name, pairs, a, b, w
        printf "loss                      %s %%\n", loss
        printf "latency one-way p50/p99   %s / %s ms\n", p50, p99
        printf "%-25s %.1f %% of one core\n", who " CPU", gw * 100 / w
        printf "CPU per relayed packet    %.2f µs (%s CPU / %d legs x 50 packets/s)\n", (rel > 0 ? gw * 1e6 / rel : 0), who, legs
        printf "%-25s %.1f MiB idle, %.1f MiB at full load, %.1f KiB per call (pair)\n", who " RSS", ri / 1024, rl / 1024, (pairs > 0 ? (rl - ri) / pairs : 0)
        printf "generator CPU             %.1f %% of one core\n", gen * 100 / w
    }'
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<< "$result"; }
