#!/usr/bin/env bash
# Build the release binaries with zig (cargo-zigbuild) and put each into its npm/ package:
#   x86_64-unknown-linux-gnu (glibc >= 2.17)   -> npm/linux-x64-gnu/
#   aarch64-unknown-linux-gnu (glibc >= 2.17)  -> npm/linux-arm64-gnu/
#   x86_64-unknown-linux-musl                  -> npm/linux-x64-musl/
#   aarch64-unknown-linux-musl                 -> npm/linux-arm64-musl/
#   aarch64-apple-darwin                       -> npm/darwin-arm64/   (no Apple framework linked:
#   x86_64-apple-darwin                        -> npm/darwin-x64/      zig's libSystem stubs suffice)
# Usage: .ci/build-binaries.sh [TARGET...]   (default: all six)
# Needs: rustup, pip (for the `ziglang` package), cargo (installs cargo-zigbuild if missing).
# The x64 gnu binary is also left in the package root, where the loader finds it for the tests (a
# failed build leaves whatever was there, e.g. the host build of `npm run demo`).
set -euo pipefail
cd "$(dirname "$0")/.."

ensure_tools() {
  if ! command -v zig >/dev/null 2>&1; then
    python3 -m pip install --quiet ziglang
    mkdir -p "$HOME/.local/bin"
    printf '#!/bin/sh\nexec python3 -m ziglang "$@"\n' > "$HOME/.local/bin/zig"
    chmod +x "$HOME/.local/bin/zig"
    export PATH="$HOME/.local/bin:$PATH"
  fi
  command -v cargo-zigbuild >/dev/null 2>&1 || cargo install --locked cargo-zigbuild
}

# triple[.glibc] -> npm platform directory
platform_of() {
  case "$1" in
    x86_64-unknown-linux-gnu*) echo linux-x64-gnu ;;
    aarch64-unknown-linux-gnu*) echo linux-arm64-gnu ;;
    x86_64-unknown-linux-musl) echo linux-x64-musl ;;
    aarch64-unknown-linux-musl) echo linux-arm64-musl ;;
    aarch64-apple-darwin) echo darwin-arm64 ;;
    x86_64-apple-darwin) echo darwin-x64 ;;
    *) echo "unknown target $1" >&2; return 1 ;;
  esac
}

build_one() {
  local target="$1" platform
  platform="$(platform_of "$target")"
  rustup target add "${target%%.*}" >/dev/null
  local start=$SECONDS
  npx napi build --platform --release --target "$target" -x --js binding.js --dts binding.d.ts
  if [ "$platform" = linux-x64-gnu ]; then
    # Also left in the package root, where the loader finds it for the tests: it replaces the host
    # build there as soon as it exists (newer than src/, so nothing rebuilds), whatever fails later.
    cp "aws-wif-supplier.$platform.node" "npm/$platform/"
  else
    mv "aws-wif-supplier.$platform.node" "npm/$platform/"
  fi
  echo "built $platform in $((SECONDS - start)) s: $(stat -c %s "npm/$platform/aws-wif-supplier.$platform.node") bytes"
}

ensure_tools
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x86_64-unknown-linux-gnu.2.17 aarch64-unknown-linux-gnu.2.17 x86_64-unknown-linux-musl aarch64-unknown-linux-musl aarch64-apple-darwin x86_64-apple-darwin)
for t in "${targets[@]}"; do build_one "$t"; done
