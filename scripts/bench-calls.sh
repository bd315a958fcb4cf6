#!/usr/bin/env bash
# Queued calls under load (issue 4): carrier calls to a DID routed to one
# queue, answered by the gateway, offered to logged-in agents who answer at
# once, bridged, then hung up by the carrier after HOLD_MS. Our generator
# (switchboard-loadgen calls) plays the carrier (from the address the
# generated config trusts as the trunk peer) and AGENTS agents (digest
# REGISTER, then the *21 login call). Reports, per round: calls per second
# (offered and bridged), answered/bridged/completed/failed, failures by
# kind, setup latency (carrier INVITE->200, carrier 200->agent INVITE), the
# gateway's CPU over the calls phase (from /proc/<pid>/stat) and per call,
# its RSS idle (agents logged in), at peak concurrency and per active call
# ((RSS at peak - RSS idle) / calls up at that moment), the generator's
# CPU, and the call records the gateway stored.
#
#   scripts/bench-calls.sh RATE [CALLS] [HOLD_MS] [AGENTS]
#
# CALLS defaults to 10 s of calls (RATE * 10), HOLD_MS to 2000, AGENTS to
# enough for the concurrency (RATE * (HOLD_MS + 1000) / 1000 * 1.2 + 20).
#
# Environment:
#   ROUNDS=n       fresh gateway per round; medians printed after (default 1)
#   STRATEGY       the queue's strategy (default longest-idle)
#   RECORD=1       answered calls are recorded (default: not)
#   GREETING=name  the queue's greeting prompt (default: none)
#   LOG_LEVEL      the gateway's log level (default info, as deployed; the
#                  server's own lines stay at info: the script waits for one)
#   CONCURRENT=n   the generator keeps at most n calls in progress
#   PIN=1          gateway on core 0, generator on core 1 (default: unpinned)
#   MEDIA_ADDRESS  the gateway's RTP address (default 127.0.0.3, see below)
#   IDLE_AFTER=s   after the last round's calls, read the gateway's RSS again
#                  after s seconds idle (leak check; default 0 = skip; use
#                  more than 32 s so transactions have expired)
#   PERF=1         profile the gateway over the calls phase (perf record, DWARF call graphs,
#                  perf-<round>.data in BENCH_OUT; the top symbols are printed)
#   SWITCHBOARD_BIN   the gateway binary to run (default: the release build;
#                  e.g. a saved copy of another build, for an A/B comparison)
#   BENCH_NO_BUILD=1  use the existing release binaries
#   BENCH_OUT      directory for logs and results (default target/bench-calls/<date>)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
rate=${1:?usage: scripts/bench-calls.sh RATE [CALLS] [HOLD_MS] [AGENTS]}
calls=${2:-$((rate * 10))}
hold_ms=${3:-2000}
agents=${4:-$((rate * (hold_ms + 1000) / 1000 * 12 / 10 + 20))}
rounds=${ROUNDS:-1}
strategy=${STRATEGY:-longest-idle}
record=false
[ "${RECORD:-0}" = 1 ] && record=true
greeting=${GREETING:-}
log_level=${LOG_LEVEL:-info}
concurrent=${CONCURRENT:-0}
idle_after=${IDLE_AFTER:-0}
first_agent=10000
did="+15550100"
bin=${CARGO_TARGET_DIR:-target}/release
gateway=${SWITCHBOARD_BIN:-$bin/switchboard}
out=${BENCH_OUT:-target/bench-calls/$(date +%Y%m%d-%H%M%S)}
for v in "$rate" "$calls" "$hold_ms" "$agents" "$rounds"; do
    [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "RATE, CALLS, HOLD_MS, AGENTS and ROUNDS must be positive integers" >&2; exit 2; }
done

# Four sockets per call (RTP and RTCP of both legs): the open-file limit
# bounds the calls up at once, and the gateway does not raise it.
up=$((rate * (hold_ms + 1000) / 1000))
nofile=$(ulimit -n)
if [ "$nofile" != unlimited ] && [ $((up * 4 + 200)) -gt "$nofile" ]; then
    echo "warning: ~$up calls up need ~$((up * 4)) sockets; the open-file limit is $nofile (ulimit -n)" >&2
fi

[ "${BENCH_NO_BUILD:-0}" = 1 ] || cargo build --release --locked --bins --quiet

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
gw=
gen=
perf_pid=
cleanup() {
    for pid in $perf_pid $gen $gw; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

. scripts/lib-bench-media.sh

sip_port=$(free_port)
api_port=$(free_port)
# The carrier: loopback, a port of its own (never 127.0.0.1:5080, which
# the interop tests use), trusted as the trunk's peer.
carrier_port=$(free_port)
carrier="127.0.0.1:$carrier_port"

# The configuration: AGENTS agents with passwords pass<id>, all members of
# one queue fed by the trunk's DID; no wrap-up, no announcements, no
# greeting unless asked, recording only with RECORD=1; dead-RTP detection
# off (the generator sends no RTP); RTP ports below the ephemeral range so
# the generator's own sockets never take one, on an address of their own
# (127.0.0.3, MEDIA_ADDRESS) so that other software on the machine bound to
# 127.0.0.1 in that range (a test's gateway, say) does not collide; a
# wildcard-bound socket in the range still can: the gateway then fails that
# call ("RTP ports not opened ... Address already in use" in its log).
{
    cat <<EOF
[log]
level = "$log_level,switchboard::server=info"
format = "human"

[sip]
domain = "127.0.0.1"
listen = [{ transport = "udp", address = "127.0.0.1:$sip_port" }]

[auth]
algorithms = ["MD5"]

[storage]
path = "$work/sb.db"

[media]
address = "${MEDIA_ADDRESS:-127.0.0.3}"
rtp_port_min = 10000
rtp_port_max = 32767
codecs = ["PCMU", "PCMA", "opus"]
dead_after_secs = 0
sounds_dir = "$ROOT/config/sounds"
hold_music = "hold-music"

[recording]
dir = "$work/rec"

[api]
listen = "127.0.0.1:$api_port"

[[trunks]]
name = "carrier"
peer = "$carrier"
transport = "udp"
dids = ["$did"]

[[queues]]
name = "load"
dids = ["$did"]
strategy = "$strategy"
ring_timeout_secs = 15
wrap_up_secs = 0
greeting = "$greeting"
announce_every_secs = 0
record = $record
EOF
    printf 'agents = ['
    for ((i = 0; i < agents; i++)); do
        [ $i -gt 0 ] && printf ', '
        printf '"%d"' $((first_agent + i))
    done
    printf ']\n'
    for ((i = 0; i < agents; i++)); do
        id=$((first_agent + i))
        printf '\n[[agents]]\nid = "%d"\npassword = "pass%d"\n' "$id" "$id"
    done
} > "$work/config.toml"
cp "$work/config.toml" "$out/config.toml"

"$gateway" check-config --config "$work/config.toml" > /dev/null 2> "$work/check.log" ||
    { echo "bench config rejected:"; cat "$work/check.log"; exit 1; }

tck=$(getconf CLK_TCK)
results=$out/results.tsv
printf 'round\tload\toffered_cps\tbridged_cps\tattempted\tanswered\tbridged\tcompleted\tfailed\tinv_p50\tinv_p99\toffer_p50\toffer_p99\tgw_cpu_pct\tgw_cpu_us_call\trss_idle_mib\trss_peak_mib\tup_at_peak\tkib_per_call\tgen_cpu_pct\tother_cpu_pct\trecords\tproblems\n' > "$results"

# thread_ticks PID: "name ticks" per thread name (utime+stime summed over the
# threads of that name), to see which thread is the limit.
thread_ticks() {
    for t in /proc/"$1"/task/*; do
        { read -r name < "$t/comm" && echo "$name $(sed 's/.*) //' "$t/stat" | awk '{print $12 + $13}')"; } 2>/dev/null || true
    done | awk '{s[$1] += $2} END {for (n in s) print n, s[n]}' | sort
}

# machine_busy: busy ticks of all cores (user+nice+system+irq+softirq+steal).
machine_busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

# last_up: the "up=" of the generator's latest progress line (0 before any).
last_up() { { grep '^PROGRESS' "$work/gen.out" || true; } | tail -n 1 | sed -n 's/.* up=\([0-9]*\).*/\1/p'; }

for ((round = 1; round <= rounds; round++)); do
    rm -f "$work"/sb.db* "$work/gw.log" "$work/gen.out"
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    "${pin_relay[@]}" "$gateway" serve --config "$work/config.toml" > /dev/null 2> "$work/gw.log" &
    gw=$!
    wait_for "$work/gw.log" "registrations restored" 20 "$gw" ||
        { echo "gateway did not start:"; tail -20 "$work/gw.log"; exit 1; }

    gen_args=(calls --target "127.0.0.1:$sip_port" --carrier "$carrier" --did "$did"
        --agents "$agents" --first-agent "$first_agent" --password 'pass{id}'
        --rate "$rate" --calls "$calls" --hold-ms "$hold_ms" --concurrent "$concurrent")
    "${pin_gen[@]}" "$bin/switchboard-loadgen" "${gen_args[@]}" > "$work/gen.out" 2>&1 &
    gen=$!
    wait_for "$work/gen.out" "^AGENTS ready" $((agents * 2 / 500 + 60)) "$gen" ||
        { echo "agents not ready:"; cat "$work/gen.out"; tail -20 "$work/gw.log"; exit 1; }
    sleep 1
    rss_idle=$(rss_kib "$gw")
    wait_for "$work/gen.out" "^CALLS start" 30 "$gen" ||
        { echo "calls did not start:"; cat "$work/gen.out"; exit 1; }
    t0=$(now)
    gw0=$(cpu_ticks "$gw")
    gen0=$(cpu_ticks "$gen")
    thread_ticks "$gw" > "$work/threads0"
    busy0=$(machine_busy)
    if [ "${PERF:-0}" = 1 ]; then
        perf record -q -F 199 --call-graph dwarf,8192 -p "$gw" -o "$out/perf-$round.data" > /dev/null 2>&1 &
        perf_pid=$!
    fi
    # Until the calls end: the gateway's RSS twice a second, and the one
    # taken while the most calls were up (the generator's last report).
    rss_peak=0
    up_peak=0
    rss_at_up=0
    end=$((SECONDS + calls / rate + hold_ms / 1000 + 120))
    while ! grep -q "^CALLS end" "$work/gen.out"; do
        if [ $SECONDS -ge $end ] || ! kill -0 "$gen" 2>/dev/null; then
            echo "generator stopped before the end of the calls:"; tail -30 "$work/gen.out"; break
        fi
        r=$(rss_kib "$gw")
        u=$(last_up)
        u=${u:-0}
        [ "$r" -gt "$rss_peak" ] && rss_peak=$r
        if [ "$u" -ge "$up_peak" ]; then up_peak=$u; rss_at_up=$r; fi
        sleep 0.5
    done
    t1=$(now)
    gw1=$(cpu_ticks "$gw")
    thread_ticks "$gw" > "$work/threads1"
    busy1=$(machine_busy)
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
        perf_pid=
    fi
    gen1=$(cpu_ticks "$gen" 2>/dev/null || true)
    [ -n "$gen1" ] || gen1=$gen0
    wait_generator 30
    cp "$work/gen.out" "$out/gen-$round.out"

    rss_idle_after=
    if [ "$round" = "$rounds" ] && [ "$idle_after" -gt 0 ]; then
        sleep "$idle_after"
        rss_idle_after=$(rss_kib "$gw")
    fi
    kill -TERM "$gw" 2>/dev/null || true
    for _ in $(seq 1 75); do kill -0 "$gw" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$gw" 2>/dev/null || true
    wait "$gw" 2>/dev/null || true
    gw=
    cp "$work/gw.log" "$out/gw-$round.log"
    records=$(sqlite3 "$work/sb.db" "SELECT group_concat(outcome || '=' || n) FROM (SELECT outcome, count(*) n FROM call_records GROUP BY outcome)" 2>/dev/null || echo "?")

    result=$(grep '^RESULT' "$work/gen.out" || true)
    [ -n "$result" ] || { echo "no RESULT from the generator:"; cat "$work/gen.out"; exit 1; }
    sed -n '/^calls load:/,/^RESULT/p' "$work/gen.out" | grep -v '^RESULT'
    window=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')
    completed=$(field completed)
    row=$(awk -v w="$window" -v gw=$((gw1 - gw0)) -v gen=$((gen1 - gen0)) -v t="$tck" -v c="$completed" \
        -v ri="$rss_idle" -v rp="$rss_at_up" -v up="$up_peak" -v busy=$((busy1 - busy0)) 'BEGIN {
        printf "%.1f\t%.0f\t%.1f\t%.1f\t%d\t%.1f\t%.1f\t%.1f", gw / t * 100 / w, (c > 0 ? gw / t * 1e6 / c : 0),
            ri / 1024, rp / 1024, up, (up > 0 ? (rp - ri) / up : 0), gen / t * 100 / w, (busy - gw - gen) / t * 100 / w
    }')
    IFS=$'\t' read -r gw_pct us_call idle_mib peak_mib up kib_call gen_pct other_pct <<< "$row"
    printf '%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$round" "$load" "$(field offered_cps)" "$(field bridged_cps)" "$(field attempted)" "$(field answered)" \
        "$(field bridged)" "$completed" "$(field failed)" "$(field inv_p50_ms)" "$(field inv_p99_ms)" \
        "$(field offer_p50_ms)" "$(field offer_p99_ms)" "$gw_pct" "$us_call" "$idle_mib" "$peak_mib" "$up" \
        "$kib_call" "$gen_pct" "$other_pct" "$records" "$(field problems)" >> "$results"
    echo "== bench-calls round $round/$rounds: $calls calls at $rate/s, hold $hold_ms ms, $agents agents ($strategy, record=$record, log $log_level), load average before: $load =="
    printf "gateway CPU               %s %% of one core over %.1f s (%s µs per completed call)\n" "$gw_pct" "$window" "$us_call"
    printf "gateway RSS               %s MiB idle (agents logged in), %s MiB with %s calls up (peak RSS %.1f MiB): %s KiB per active call\n" \
        "$idle_mib" "$peak_mib" "$up" "$(awk -v r="$rss_peak" 'BEGIN {print r / 1024}')" "$kib_call"
    [ -n "$rss_idle_after" ] && printf "gateway RSS after %s s idle %.1f MiB\n" "$idle_after" "$(awk -v r="$rss_idle_after" 'BEGIN {print r / 1024}')"
    printf "gateway CPU by thread     %s\n" "$(join "$work/threads0" "$work/threads1" | awk -v w="$window" -v t="$tck" '
        {d = ($3 - $2) / t * 100 / w; if (d >= 0.5) printf "%s%s %.1f %%", (n++ ? ", " : ""), $1, d}')"
    printf "generator CPU             %s %% of one core\n" "$gen_pct"
    printf "other CPU                 %s %% of one core (everything else on the machine: a run with much here was disturbed)\n" "$other_pct"
    printf "call records stored       %s\n" "$records"
    if [ -f "$out/perf-$round.data" ]; then
        echo "gateway profile (self time, top symbols):"
        perf report -i "$out/perf-$round.data" --no-children --sort comm,symbol --stdio 2>/dev/null |
            grep -E '^ +[0-9]' | head -25
    fi
    echo
done

if [ "$rounds" -gt 1 ]; then
    echo "Medians over $rounds rounds ($results):"
    awk -F'\t' 'NR > 1 {
        for (i = 3; i <= 21; i++) v[i, NR - 1] = $i
        failed += $9; n = NR - 1
    }
    function median(col,    a, i, j, t) {
        for (i = 1; i <= n; i++) a[i] = v[col, i] + 0
        for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END {
        printf "offered %.0f/s, bridged %.0f/s; failed %d in all; INVITE->200 p50 %.2f p99 %.2f ms; 200->agent INVITE p50 %.2f p99 %.2f ms\n",
            median(3), median(4), failed, median(10), median(11), median(12), median(13)
        printf "gateway CPU %.1f %% (%.0f µs per call); RSS idle %.1f MiB, with %d calls up %.1f MiB: %.1f KiB per active call; generator CPU %.1f %%; other CPU %.1f %%\n",
            median(14), median(15), median(16), median(18), median(17), median(19), median(20), median(21)
    }' "$results"
fi
echo "logs and results: $out"
