#!/usr/bin/env bash
# Fuzz Switchboard's SIP parsing for a bounded time (see docs/fuzzing.md).
#
#   scripts/fuzz.sh [SECONDS] [TARGET]
#
#   SECONDS  how long libFuzzer runs; default 60
#   TARGET   parse_message (default) or stream_framer
#
# Environment:
#   FUZZ_SANITIZER  none (default: plain stable Rust) or address (AddressSanitizer;
#                   needs nightly flags, enabled on stable with RUSTC_BOOTSTRAP=1)
#   FUZZ_ARGS       extra libFuzzer options, e.g. "-jobs=2 -workers=2"
#
# The corpus lives in fuzz/corpus/<TARGET> (not committed) and is seeded with
# the RFC 4475 torture messages each run; crashes land in fuzz/artifacts/<TARGET>.
# Exit status: 0 when the time ran out with no finding, non-zero on a crash,
# timeout or out-of-memory (the reproducer path is printed).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-60}"
target="${2:-parse_message}"
sanitizer="${FUZZ_SANITIZER:-none}"

if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: ${0##*/} [SECONDS] [parse_message|stream_framer|sdp_parse|rtp_packet|rtcp_compound|dtmf_event|wav_file|rtp_relay|media_session]" >&2
    exit 64
fi
case "$target" in
    parse_message | stream_framer | sdp_parse | rtp_packet | rtcp_compound | dtmf_event | wav_file | rtp_relay | media_session) ;;
    *) echo "unknown fuzz target '$target' (parse_message, stream_framer, sdp_parse, rtp_packet, rtcp_compound, dtmf_event, wav_file, rtp_relay, media_session)" >&2; exit 64 ;;
esac
case "$sanitizer" in
    none) ;;
    address) export RUSTC_BOOTSTRAP=1 ;; # -Zsanitizer is a nightly flag
    *) echo "FUZZ_SANITIZER must be none or address" >&2; exit 64 ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz not found; installing it (cargo install cargo-fuzz --locked)" >&2
    cargo install cargo-fuzz --locked
fi

# Seed from the torture corpus. -n keeps whatever libFuzzer has already
# learnt under the same names; new seeds are added, nothing is removed.
corpus="$root/fuzz/corpus/$target"
mkdir -p "$corpus"
for message in "$root"/tests/torture/*.dat; do
    cp -n "$message" "$corpus/rfc4475-$(basename "$message" .dat)"
done

cd "$root"
# shellcheck disable=SC2086 # FUZZ_ARGS is a list of options
exec cargo fuzz run \
    --sanitizer "$sanitizer" \
    --target-dir "$root/fuzz/target" \
    "$target" -- \
    -max_total_time="$seconds" \
    -dict="$root/fuzz/dict/sip.dict" \
    -max_len=16384 \
    -timeout=10 \
    -rss_limit_mb=2048 \
    -print_final_stats=1 \
    ${FUZZ_ARGS:-}
