#!/usr/bin/env bash
# Runs the gateway on its embedded demo configuration (README).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release --locked -- serve --config "${1:-config/switchboard.toml}"
