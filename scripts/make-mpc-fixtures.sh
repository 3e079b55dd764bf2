#!/usr/bin/env bash
# Regenerates the committed key-share fixtures with the real DKG and production parameters:
# crates/mpc/fixtures (3-of-5, alice..eve) and crates/mpc/fixtures/2-of-4 (alice..dave).
# About a minute each.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --locked -p sigil-mpc --example make_fixtures -- crates/mpc/fixtures 3 5
cargo run --release --locked -p sigil-mpc --example make_fixtures -- crates/mpc/fixtures/2-of-4 2 4
