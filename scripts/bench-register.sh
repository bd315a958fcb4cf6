#!/usr/bin/env bash
# Authenticated REGISTER throughput: Switchboard against Kamailio 5.6 as an
# in-memory registrar, both driven by the same SIPp run
# (tests/sipp/register_auth.xml: REGISTER, 401 with an MD5 qop=auth
# challenge, REGISTER with credentials, 200 listing the binding).
#
#   scripts/bench-register.sh [RATE...]        default rates: 10000 15000 20000
#
# For each server (Kamailio first, then Switchboard) and each placement
# ("pinned": server on core 0, SIPp on core 1; "unpinned": the scheduler
# decides), the server is started once on udp 127.0.0.1:5060, warmed up, and
# then every RATE is run with
#
#   sipp -sf tests/sipp/register_auth.xml -inf tests/sipp/agents.csv \
#        -i 127.0.0.1 -p 5090 -mp 5092 -r RATE -m RATE*8 -l 30000 \
#        -buff_size 8388608 -nostdin -timeout 40s -timeout_error 127.0.0.1:5060
#
# Kamailio runs benches/kamailio/kamailio.cfg: stateless like its stock
# configuration, usrloc in memory, MD5 digest with qop=auth and nonce-count
# replay checks (KAMAILIO_DEFINES=STATEFUL KAMAILIO_ARGS="-m 4096" gives it a
# transaction per request, as Switchboard has; 1 GiB of shared memory runs
# out at 10,000/s in that mode). Switchboard runs config/switchboard.toml
# with its SQLite database in a scratch directory.
#
# Reported per run: SIPp's cumulative call rate, successful and failed calls,
# REGISTER retransmissions, the server's CPU time (utime+stime of all its
# processes, including 6 s after SIPp ends so deferred work such as
# Kamailio's transaction clean-up is charged to the run that caused it), CPU
# per registration, SIPp's own CPU, and the server's memory after the run.
# A Markdown table is printed at the end and kept with the logs in
# $BENCH_OUT (default target/bench-register/<date>).
#
# Environment:
#   BENCH_SERVERS    servers to run, in order   (default "kamailio switchboard")
#   BENCH_PLACEMENTS placements to run          (default "pinned unpinned")
#   BENCH_ROUNDS     times the whole sequence (every server, placement and
#                    rate) is run, servers taking turns (default 1); with more
#                    than one, a table of medians follows the full table
#   BENCH_SETTLE     seconds after each run before reading the CPU (default 6)
#   BENCH_IDLE       seconds of idling after the last run of a server before
#                    its memory is read once more (default 40: longer than
#                    the 32 s a UDP non-INVITE server transaction lingers,
#                    RFC 3261 §17.2.2 Timer J); 0 skips it
#   BENCH_PORT       the servers' UDP port on 127.0.0.1 (default 5060)
#   BENCH_API_PORT   Switchboard's HTTP API port on 127.0.0.1 (default 8080)
#   BENCH_OUT        directory for logs and the table
#   BENCH_NO_BUILD=1 use the existing release binary
#   BENCH_REPORT=DIR print the tables of an earlier run's directory and stop
#   KAMAILIO_DEFINES extra -A defines for benches/kamailio/kamailio.cfg, e.g.
#                    "STATEFUL" (tm transaction per request)
#   KAMAILIO_ARGS    extra kamailio arguments, e.g. "-x tlsf" (memory manager)
#
# Needs: apt-get (kamailio, sip-tester, util-linux, iproute2) and cargo.
# Everything stays on 127.0.0.1. Root raises net.core.{r,w}mem_max to
# 16 MiB for the run (and puts back the old values); without root the socket
# buffers stay as the kernel allows.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

RATES=("$@")
if [[ ${#RATES[@]} -eq 0 ]]; then
    RATES=(10000 15000 20000)
fi
for r in "${RATES[@]}"; do
    if ! [[ $r =~ ^[1-9][0-9]*$ ]]; then
        echo "usage: $0 [RATE...]   (RATE: registrations per second, a positive integer)" >&2
        exit 2
    fi
done

for p in "${BENCH_PORT:-5060}" "${BENCH_API_PORT:-8080}"; do
    [[ $p =~ ^[1-9][0-9]*$ && $p -lt 65536 ]] || { echo "BENCH_PORT/BENCH_API_PORT: '$p' is not a port" >&2; exit 2; }
done

read -r -a SERVERS <<<"${BENCH_SERVERS:-kamailio switchboard}"
read -r -a PLACEMENTS <<<"${BENCH_PLACEMENTS:-pinned unpinned}"
BENCH_SETTLE_DEFAULT=6
SETTLE=${BENCH_SETTLE:-$BENCH_SETTLE_DEFAULT}
ROUNDS=${BENCH_ROUNDS:-1}
IDLE=${BENCH_IDLE:-40}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_ROUNDS: '$ROUNDS' is not a positive integer" >&2; exit 2; }
HOST=127.0.0.1
PORT=${BENCH_PORT:-5060}
API_PORT=${BENCH_API_PORT:-8080}
SIPP_PORT=5090
SIPP_MEDIA_PORT=5092
SERVER_CORE=0
SIPP_CORE=1
SOCK_BUF_MAX=16777216
SCENARIO=$ROOT/tests/sipp/register_auth.xml
AGENTS=$ROOT/tests/sipp/agents.csv
KAMAILIO_CFG=$ROOT/benches/kamailio/kamailio.cfg
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SWITCHBOARD=$TARGET_DIR/release/switchboard
OUT=${BENCH_OUT:-$ROOT/target/bench-register/$(date +%Y%m%d-%H%M%S)}
CLK_TCK=$(getconf CLK_TCK)

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# The tables, from results.tsv (and idle-memory.txt) in directory $1.
report() {
    local RESULTS=$1/results.tsv OUT=$1 ROUNDS SETTLE
    ROUNDS=$(tail -n +2 "$RESULTS" | cut -f1-3 | sort | uniq -c | awk '{print $1}' | sort -n | tail -n 1)
    SETTLE=$(cat "$1/settle" 2>/dev/null || echo "$BENCH_SETTLE_DEFAULT")

    echo
    echo "| server | placement | target/s | achieved/s | ok | failed | REGISTER retrans (1st/2nd) | server CPU s | CPU µs/reg | server core % | SIPp CPU s | SIPp core % | server/SIPp CPU | server RSS MiB | server PSS MiB | other CPU s |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    tail -n +2 "$RESULTS" | awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s/%s | %s | %s | %s | %s | %s | %.2f | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, ($12 > 0 ? $9 / $12 : 0), $14, $15, $17}'
    if [[ $ROUNDS -gt 1 ]]; then
        echo
        echo "Medians over $ROUNDS rounds (failed: the total, and in how many rounds any call failed):"
        echo
        echo "| server | placement | target/s | achieved/s | failed (rounds) | CPU µs/reg | server core % | SIPp core % | server/SIPp CPU |"
        echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        # Group rows by server, placement and rate in first-seen order.
        tail -n +2 "$RESULTS" | awk -F'\t' '
            function median(list,    v, n, i, j, t) {
                n = split(list, v, " ")
                for (i = 2; i <= n; i++)
                    for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
                return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            }
            {
                k = $1 SUBSEP $2 SUBSEP $3
                if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
                cps[k] = cps[k] " " $4; us[k] = us[k] " " $10
                score[k] = score[k] " " $11; sipp[k] = sipp[k] " " $13
                ratio[k] = ratio[k] " " ($12 > 0 ? $9 / $12 : 0)
                failed[k] += $6; bad[k] += ($6 > 0)
            }
            END {
                for (i = 1; i <= nk; i++) {
                    k = order[i]; split(k, p, SUBSEP)
                    printf "| %s | %s | %s | %.0f | %d (%d) | %.1f | %.0f | %.0f | %.2f |\n", p[1], p[2], p[3],
                        median(cps[k]), failed[k], bad[k], median(us[k]), median(score[k]), median(sipp[k]),
                        median(ratio[k])
                }
            }'
    fi
    echo
    echo "achieved/s: SIPp's cumulative Call Rate (one call = one authenticated registration)."
    echo "server CPU: utime+stime of all server processes from just before SIPp starts to ${SETTLE} s after it ends;"
    echo "core %: that CPU (or SIPp's) over SIPp's wall time. RSS sums every process (Kamailio's shared memory"
    echo "counts once per process); PSS splits shared pages, so it is the comparable total."
    echo "server/SIPp CPU: SIPp does the same work per call against either server, so this ratio cancels"
    echo "the speed of the (shared, virtual) machine at the time of the run; compare it on runs without retransmissions."
    echo "other CPU: busy time of the whole machine in the same window minus server and SIPp: load from"
    echo "other processes (a run with seconds here was disturbed; run it again), plus softirq not charged to either."
    if [[ -s $OUT/idle-memory.txt ]]; then
        echo
        sed 's/^/- /' "$OUT/idle-memory.txt"
    fi
}

if [[ -n ${BENCH_REPORT:-} ]]; then
    report "$BENCH_REPORT"
    exit 0
fi

# ---------------------------------------------------------------- installs

as_root=()
if [[ $(id -u) -ne 0 ]]; then
    as_root=(sudo)
fi
apt_updated=0
need_package() { # command package
    command -v "$1" >/dev/null 2>&1 && return 0
    log "installing $2 (for $1)"
    if [[ $apt_updated -eq 0 ]]; then
        "${as_root[@]}" apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "$2" >/dev/null
    command -v "$1" >/dev/null 2>&1 || die "$2 installed but $1 still not found"
    # Debian enables the packaged service, which would hold port 5060 with
    # the stock configuration wherever systemd runs.
    if [[ $2 == kamailio ]] && command -v systemctl >/dev/null 2>&1 &&
        systemctl is-active --quiet kamailio 2>/dev/null; then
        log "stopping the kamailio service the package started"
        "${as_root[@]}" systemctl stop kamailio || true
    fi
}
need_package sipp sip-tester
need_package taskset util-linux
need_package ss iproute2
for s in "${SERVERS[@]}"; do
    case $s in
    kamailio) need_package kamailio kamailio ;;
    switchboard) ;;
    *) die "unknown server '$s' in BENCH_SERVERS (kamailio, switchboard)" ;;
    esac
done

if [[ " ${SERVERS[*]} " == *" switchboard "* ]]; then
    if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
        log "cargo build --release --locked (target dir $TARGET_DIR)"
        cargo build --release --locked
    fi
    [[ -x $SWITCHBOARD ]] || die "$SWITCHBOARD missing (build it, or unset BENCH_NO_BUILD)"
fi

# ---------------------------------------------------------------- checks

if [[ $(nproc) -lt 2 ]]; then
    log "only $(nproc) core: pinned runs put server and SIPp on core 0"
    SIPP_CORE=0
fi

udp_owner() { # port: the ss line of whoever has it bound, if anyone
    ss -Hlunp "sport = :$1" 2>/dev/null | head -n 1
}
for p in $PORT $SIPP_PORT $SIPP_MEDIA_PORT; do
    owner=$(udp_owner "$p")
    [[ -z $owner ]] || die "udp port $p is in use, stop that first: $owner"
done

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RESULTS=$OUT/results.tsv

# ---------------------------------------------------------------- clean-up

SERVER_PID=
SYSCTL_RESTORE=()
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-register.XXXXXX")

stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            log "server $SERVER_PID ignored SIGTERM for 10 s, killing it"
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

cleanup() {
    stop_server
    local kv
    for kv in "${SYSCTL_RESTORE[@]}"; do
        sysctl -q -w "$kv" >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- sysctls

if [[ $(id -u) -eq 0 ]]; then
    for key in net.core.rmem_max net.core.wmem_max; do
        old=$(sysctl -n "$key")
        if [[ $old -lt $SOCK_BUF_MAX ]]; then
            sysctl -q -w "$key=$SOCK_BUF_MAX"
            SYSCTL_RESTORE+=("$key=$old")
            log "$key: $old -> $SOCK_BUF_MAX (restored at exit)"
        fi
    done
else
    log "not root: net.core.rmem_max/wmem_max left as they are ($(sysctl -n net.core.rmem_max)/$(sysctl -n net.core.wmem_max))"
fi

# SIPp warns when -l plus its sockets exceed the open-file limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---------------------------------------------------------------- measuring

server_pids() { # the server process and its children (Kamailio forks workers)
    echo "$SERVER_PID"
    ps -o pid= --ppid "$SERVER_PID" 2>/dev/null || true
}

server_ticks() { # utime+stime of every server process, in clock ticks
    local pid total=0 rest
    for pid in $(server_pids); do
        # comm is in parentheses and may hold spaces: cut after the last ')'.
        rest=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        rest=${rest##*) }
        read -r -a f <<<"$rest"
        # f[0] is field 3 (state): utime is field 14, stime field 15.
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}

machine_ticks() { # "idle softirq steal uptime" of the whole machine
    # /proc/stat: cpu user nice system idle iowait irq softirq steal ... in
    # clock ticks. Idle time is measured at idle entry and exit, while the
    # busy columns are sampled at ticks and miss much of a load that sleeps
    # and wakes thousands of times a second; so busy = wall - idle.
    awk '/^cpu / {i = $5 + $6; si = $8; st = $9}
        END {getline up < "/proc/uptime"; split(up, u, " "); print i, si, st, u[1]}' /proc/stat
}

server_memory_kib() { # "RSS PSS" summed over the server's processes, KiB
    local pid rss=0 pss=0 v
    for pid in $(server_pids); do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || continue
        rss=$((rss + ${v:-0}))
        v=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null) || v=0
        pss=$((pss + ${v:-0}))
    done
    echo "$rss $pss"
}

start_server() { # name placement
    local name=$1 placement=$2 pin=()
    if [[ $placement == pinned ]]; then
        pin=(taskset -c "$SERVER_CORE")
    fi
    local logf=$OUT/$name-$placement.log
    case $name in
    kamailio)
        local defines=(-A "BENCH_LISTEN=udp:$HOST:$PORT")
        for d in ${KAMAILIO_DEFINES:-}; do
            defines+=(-A "$d")
        done
        # -DD: stay in the foreground; -E: log to stderr. 1 GiB of shared
        # memory holds the transactions kept for tm's wait timer at 20k/s.
        local extra=()
        read -r -a extra <<<"${KAMAILIO_ARGS:-}"
        "${pin[@]}" kamailio -f "$KAMAILIO_CFG" -DD -E -m 1024 -M 16 \
            -w "$WORK" "${defines[@]}" "${extra[@]}" >"$logf" 2>&1 &
        ;;
    switchboard)
        local cfg=$WORK/switchboard.toml
        rm -f "$WORK"/switchboard.db*
        # The demo configuration with its database in the scratch directory
        # (and the ports moved when BENCH_PORT/BENCH_API_PORT say so).
        awk -v db="$WORK/switchboard.db" -v sip="$HOST:$PORT" -v api="$HOST:$API_PORT" '
            /^\[/ { section = $0 }
            section == "[storage]" && /^[ \t]*path[ \t]*=/ { print "path = \"" db "\""; next }
            section == "[sip]" { gsub(/"127\.0\.0\.1:5060"/, "\"" sip "\"") }
            section == "[api]" && /^[ \t]*listen[ \t]*=/ { print "listen = \"" api "\""; next }
            { print }' "$ROOT/config/switchboard.toml" >"$cfg"
        grep -q "^path = \"$WORK/switchboard.db\"" "$cfg" ||
            die "config/switchboard.toml has no [storage] path to redirect"
        (cd "$WORK" && exec "${pin[@]}" "$SWITCHBOARD" serve --config "$cfg") >"$logf" 2>&1 &
        ;;
    esac
    SERVER_PID=$!
    for _ in $(seq 1 200); do
        kill -0 "$SERVER_PID" 2>/dev/null || {
            tail -n 20 "$logf" >&2
            die "$name exited at start-up (log: $logf)"
        }
        [[ -n $(udp_owner "$PORT") ]] && break
        sleep 0.1
    done
    [[ -n $(udp_owner "$PORT") ]] || die "$name did not bind udp $HOST:$PORT within 20 s"
    log "$name ($placement) running as pid $SERVER_PID: $(server_pids | wc -l) process(es)"
}

# One SIPp run. Prints "rate ok failed retrans1 retrans2 sipp_cpu_s wall_s rc".
sipp_run() { # rate calls tag placement
    local rate=$1 calls=$2 tag=$3 placement=$4 pin=()
    if [[ $placement == pinned ]]; then
        pin=(taskset -c "$SIPP_CORE")
    fi
    local screen=$OUT/$tag.screen errf=$OUT/$tag.sipp-stderr timef=$WORK/time
    local t0 t1 rc=0
    t0=$(date +%s.%N)
    # bash's `time` reports the CPU of the waited-for children: timeout,
    # taskset (exec) and SIPp. The outer timeout bounds a wedged SIPp.
    {
        TIMEFORMAT='%U %S'
        time (cd "$WORK" && timeout -k 5 90 "${pin[@]}" sipp -sf "$SCENARIO" -inf "$AGENTS" \
            -i $HOST -p $SIPP_PORT -mp $SIPP_MEDIA_PORT -r "$rate" -m "$calls" -l 30000 \
            -buff_size 8388608 -nostdin -timeout 40s -timeout_error \
            -trace_screen -screen_file "$screen" "$HOST:$PORT" >/dev/null 2>"$errf")
    } 2>"$timef" || rc=$?
    t1=$(date +%s.%N)
    local cps ok failed re1 re2 cpu
    cps=$(awk -F'|' '/^ *Call Rate /{v=$3} END{gsub(/[^0-9.]/, "", v); print v+0}' "$screen" 2>/dev/null || echo 0)
    ok=$(awk -F'|' '/^ *Successful call /{v=$3} END{gsub(/[^0-9]/, "", v); print v+0}' "$screen" 2>/dev/null || echo 0)
    failed=$(awk -F'|' '/^ *Failed call /{v=$3} END{gsub(/[^0-9]/, "", v); print v+0}' "$screen" 2>/dev/null || echo 0)
    # The scenario screen lists both REGISTERs: "REGISTER ----> msgs retrans timeout".
    read -r re1 re2 < <(awk '/^ *REGISTER -+>/ {n++; r[n] = $4}
        END {print (r[1] == "" ? 0 : r[1]), (r[2] == "" ? 0 : r[2])}' "$screen" 2>/dev/null || echo "0 0")
    cpu=$(awk '{print $1 + $2}' "$timef" 2>/dev/null || echo 0)
    echo "$cps $ok $failed $re1 $re2 $cpu $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}') $rc"
}

printf 'server\tplacement\trate\tcps\tok\tfailed\tretrans1\tretrans2\tserver_cpu_s\tus_per_reg\tserver_core_pct\tsipp_cpu_s\tsipp_core_pct\trss_mib\tpss_mib\tsipp_rc\tothers_cpu_s\tsoftirq_s\tsteal_s\n' >"$RESULTS"

log "output: $OUT"
log "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
log "$(sipp -v 2>&1 | grep -m1 -o 'SIPp v[^ ]*' || true); $(kamailio -v 2>/dev/null | head -n 1 || true)"

# One measured run against the running server; appends a row to $RESULTS.
measure() { # label placement rate tag
    local label=$1 placement=$2 rate=$3 tag=$4
    local before after cps ok failed re1 re2 scpu wall rc rss pss m0 m1
    log "$tag: $((rate * 8)) registrations at $rate/s"
    m0=$(machine_ticks)
    before=$(server_ticks)
    read -r cps ok failed re1 re2 scpu wall rc < <(sipp_run "$rate" $((rate * 8)) "$tag" "$placement")
    sleep "$SETTLE"
    after=$(server_ticks)
    m1=$(machine_ticks)
    kill -0 "$SERVER_PID" 2>/dev/null || die "server died during $tag (log in $OUT)"
    read -r rss pss < <(server_memory_kib)
    awk -v OFS='\t' -v n="$label" -v pl="$placement" -v r="$rate" -v cps="$cps" \
        -v ok="$ok" -v f="$failed" -v r1="$re1" -v r2="$re2" -v ticks=$((after - before)) \
        -v hz="$CLK_TCK" -v scpu="$scpu" -v wall="$wall" -v rss="$rss" -v pss="$pss" -v rc="$rc" \
        -v m0="$m0" -v m1="$m1" -v ncpu="$(nproc)" '
        BEGIN {
            cpu = ticks / hz
            us = ok > 0 ? cpu * 1e6 / ok : 0
            split(m0, a, " "); split(m1, b, " ")
            # Busy time of everything but the server and SIPp: other load on
            # the machine during the run (noise), plus the little that the
            # kernel does on nobody'"'"'s behalf.
            others = (b[4] - a[4]) * ncpu - (b[1] - a[1]) / hz - cpu - scpu
            print n, pl, r, sprintf("%.0f", cps), ok, f, r1, r2, sprintf("%.2f", cpu),
                sprintf("%.1f", us), sprintf("%.0f", 100 * cpu / wall), sprintf("%.2f", scpu),
                sprintf("%.0f", 100 * scpu / wall), sprintf("%.1f", rss / 1024),
                sprintf("%.1f", pss / 1024), rc, sprintf("%.2f", others),
                sprintf("%.2f", (b[2] - a[2]) / hz), sprintf("%.2f", (b[3] - a[3]) / hz)
        }' >>"$RESULTS"
    tail -n 1 "$RESULTS" | awk -F'\t' '{printf "[bench]   %s cps, %s ok, %s failed, retrans %s/%s, server %s s CPU (%s us/reg), SIPp %s s CPU, others %s s\n", $4, $5, $6, $7, $8, $9, $10, $12, $17}' >&2
}

label_of() { # server name -> the label of its rows
    local label=$1
    if [[ $1 == kamailio && -n "${KAMAILIO_DEFINES:-}${KAMAILIO_ARGS:-}" ]]; then
        label="kamailio ${KAMAILIO_DEFINES:-} ${KAMAILIO_ARGS:-}"
    fi
    echo "$label" | tr -s ' ' | sed 's/ $//'
}

# Rounds go through every server in turn, so a slow spell of the machine
# (this is a shared VM: the same run varies by 20 % from one minute to the
# next) falls on both servers rather than on whichever ran then.
for round in $(seq 1 "$ROUNDS"); do
    for name in "${SERVERS[@]}"; do
        label=$(label_of "$name")
        for placement in "${PLACEMENTS[@]}"; do
            case $placement in pinned | unpinned) ;; *) die "unknown placement '$placement'" ;; esac
            [[ $ROUNDS -eq 1 ]] || log "round $round of $ROUNDS"
            start_server "$name" "$placement"
            # Warm-up, not reported: first allocations, SQLite pages, caches.
            # A failing warm-up means a broken set-up, not load.
            read -r _ w_ok w_failed _ _ _ _ w_rc < <(sipp_run 1000 3000 "$name-$placement-warmup-$round" "$placement")
            if [[ $w_failed -ne 0 || $w_ok -ne 3000 ]]; then
                die "$name warm-up: $w_ok ok, $w_failed failed, SIPp rc $w_rc (see $OUT/$name-$placement-warmup-$round.screen)"
            fi
            sleep "$SETTLE"
            for rate in "${RATES[@]}"; do
                measure "$label" "$placement" "$rate" "$name-$placement-$rate-$round"
            done
            if [[ $IDLE -gt 0 && $round -eq $ROUNDS ]]; then
                sleep "$IDLE"
                read -r rss pss < <(server_memory_kib)
                awk -v l="$label" -v p="$placement" -v i="$IDLE" -v rss="$rss" -v pss="$pss" 'BEGIN {
                    printf "%s (%s) after %s s idle: RSS %.1f MiB, PSS %.1f MiB\n", l, p, i, rss / 1024, pss / 1024
                }' >>"$OUT/idle-memory.txt"
                log "$(tail -n 1 "$OUT/idle-memory.txt")"
            fi
            stop_server
        done
    done
done


echo "$SETTLE" >"$OUT/settle"
report "$OUT" | tee "$OUT/results.md"
