#!/usr/bin/env bash
# Regenerates crates/mpc/fixtures: a 3-of-5 network key and aux data for the dev validators
# alice..eve, made by the real DKG with production parameters. Takes several minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --locked -p sigil-mpc --example make_fixtures -- crates/mpc/fixtures
