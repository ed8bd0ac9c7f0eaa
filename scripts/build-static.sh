#!/usr/bin/env bash
# Builds ssehub as one fully static binary (glibc linked in, no dynamic loader), the form
# to copy onto a small machine: target/x86_64-unknown-linux-gnu/release/ssehub.
# Usage: scripts/build-static.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
    cargo build --release --bin ssehub --target x86_64-unknown-linux-gnu
bin=target/x86_64-unknown-linux-gnu/release/ssehub
ls -l "$bin"
file "$bin" 2>/dev/null || true
