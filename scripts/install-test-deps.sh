#!/usr/bin/env bash
# Install the Debian packages the test suites need, on a fresh Debian 12
# machine that has only the Rust toolchain. Idempotent: packages already
# present are left alone, `apt-get update` runs at most once and only when the
# package lists cannot provide what is missing. Works as root (CI) and through
# sudo otherwise. Prints one line unless something fails.
#
#   sip-tester    SIPp, drives tests/sipp/*.xml against the registrar
#   baresip-core  a real SIP user agent for end-to-end call tests
#   sox           makes and measures the audio the call tests play
#   g++           only if no C++ compiler exists: cargo-fuzz builds libFuzzer
#   libopus-dev, pkg-config
#                 the Opus codec (audiopus links the system libopus); these
#                 two are all that `--build` installs, for scripts/run.sh
set -euo pipefail

packages=(libopus-dev pkg-config)
if [[ "${1:-}" != "--build" ]]; then
    packages+=(sip-tester baresip-core sox)
fi
if ! command -v c++ >/dev/null 2>&1; then
    packages+=(g++)
fi

installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

missing=()
for pkg in "${packages[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "test dependencies present: ${packages[*]}"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: apt-get not found; install by hand: ${missing[*]}" >&2
    exit 1
fi
if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "install-test-deps: need root or sudo to install: ${missing[*]}" >&2
    exit 1
fi

# Run quietly; show the output only when the command fails.
quiet() {
    local log status=0
    log="$(mktemp)"
    "$@" >"$log" 2>&1 || status=$?
    if [[ $status -ne 0 ]]; then
        echo "install-test-deps: failed: $*" >&2
        cat "$log" >&2
    fi
    rm -f "$log"
    return "$status"
}

apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Use-Pty=0)

# A fresh image ships empty package lists: refresh them only if some missing
# package has no installation candidate yet.
has_candidate() {
    local policy
    policy="$(apt-cache policy "$1" 2>/dev/null || true)"
    [[ $policy == *"Candidate: "* && $policy != *"Candidate: (none)"* ]]
}
for pkg in "${missing[@]}"; do
    if ! has_candidate "$pkg"; then
        quiet "${apt[@]}" update
        break
    fi
done

quiet "${apt[@]}" install --no-install-recommends "${missing[@]}"
echo "installed test dependencies: ${missing[*]}"
