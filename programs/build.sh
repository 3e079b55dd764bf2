#!/usr/bin/env bash
# Rebuilds the example programs into components, reproducibly:
#
#   programs/build.sh            # writes programs/dist/<name>.wasm and dist/TOOLCHAIN
#   programs/build.sh OUT_DIR    # writes there instead (the reproducibility test uses this)
#
# Needs: cargo, and the wasm32-unknown-unknown target (`rustup target add wasm32-unknown-unknown`).
# Nothing else: the componentize step is a small Rust tool in programs/tools/componentize.
#
# Why it stages the sources at a fixed path: cargo hashes the path of a dependency that lives
# outside the workspace (the SDK, ../crates/program-sdk) into its crate hash, and that hash
# decides symbol names and the order of functions in the output. Building from one fixed path
# makes the bytes independent of where the repository is checked out. Registry paths are
# remapped, there is one codegen unit, no debug info, and Cargo.lock pins every dependency;
# the same rustc (dist/TOOLCHAIN) then gives the same bytes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
out="$(mkdir -p "${1:-$here/dist}" && cd "${1:-$here/dist}" && pwd)"
stage=/tmp/sigil-programs-build
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
target=wasm32-unknown-unknown
# Each group is one `cargo build`, and cargo unifies dependency features within one: a program
# added to a group can change the bytes, so the ids, of the others. A new program gets a group
# of its own.
groups=(
    "message-size eth-allowlist device-key custom-hash infinite-loop trap memory-hog fuel-burner echo-hash"
    "solana-allowlist"
)
read -r -a programs <<<"${groups[*]}"

if ! [ -d "$(rustc --print sysroot)/lib/rustlib/$target" ]; then
    echo "build.sh: the $target target is not installed; run: rustup target add $target" >&2
    exit 1
fi

mkdir -p "$stage"
# One build at a time: the staging directory is shared.
if command -v flock >/dev/null; then
    exec 9>"$stage/lock"
    flock 9
fi

# Stage exactly what the build reads: the programs workspace, the SDK, the WIT file and the
# root manifest the SDK inherits its package fields from (with only the SDK as a member).
rm -rf "$stage/src"
mkdir -p "$stage/src/crates/programs" "$stage/src/programs"
cp -R "$repo/crates/program-sdk" "$stage/src/crates/"
cp -R "$repo/crates/programs/wit" "$stage/src/crates/programs/"
sed 's|^members = .*|members = ["crates/program-sdk"]|' "$repo/Cargo.toml" >"$stage/src/Cargo.toml"
(cd "$here" && tar --exclude=./target --exclude=./dist -cf - .) | (cd "$stage/src/programs" && tar -xf -)

# Flags from the environment would change the output; only these apply.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS RUSTC_WRAPPER CARGO_BUILD_RUSTC_WRAPPER
export CARGO_TARGET_DIR="$stage/target"
cd "$stage/src/programs"

for group in "${groups[@]}"; do
    packages=()
    for name in $group; do packages+=(-p "$name"); done
    cargo build --locked --release --target "$target" "${packages[@]}" \
        --config "target.$target.rustflags = ['--remap-path-prefix=$cargo_home=/cargo', '--remap-path-prefix=$stage/src=/sigil', '-Ccodegen-units=1', '-Cdebuginfo=0']"
done
cargo build --locked --release -p componentize

for name in "${programs[@]}"; do
    "$CARGO_TARGET_DIR/release/componentize" \
        "$CARGO_TARGET_DIR/$target/release/${name//-/_}.wasm" "$out/$name.wasm"
    echo "built $out/$name.wasm ($(wc -c <"$out/$name.wasm") bytes)"
done
rustc --version >"$out/TOOLCHAIN"
