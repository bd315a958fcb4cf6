#!/usr/bin/env bash
# Runs the gateway on its embedded demo configuration (README).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh --build
exec cargo run --release --locked -- serve --config "${1:-config/switchboard.toml}"
