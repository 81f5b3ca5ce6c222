#!/usr/bin/env bash
# Type-check and lint the Windows build (x86_64-pc-windows-msvc) here: linking needs the MSVC import
# libraries, which no registry we reach provides, so the Windows .node is built by the release
# workflow only. `cargo clippy --target` still compiles every crate and runs every build script:
# ring's C code goes through zig cc with the mingw headers zig ships (the cc crate's --target
# dropped) and `zig lib` as the archiver.
# Needs: rustup, python3 with the `ziglang` package (.ci/build-binaries.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import ziglang' 2>/dev/null || python3 -m pip install --quiet ziglang
rustup target add x86_64-pc-windows-msvc >/dev/null
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
cat > "$tools/cc" <<'PY'
#!/usr/bin/env python3
import os, sys
args = [a for a in sys.argv[1:] if not a.startswith("--target=")]
os.execvp("python3", ["python3", "-m", "ziglang", "cc", "-target", "x86_64-windows-gnu", *args])
PY
printf '#!/bin/sh\nexec python3 -m ziglang lib "$@"\n' > "$tools/lib"
chmod +x "$tools/cc" "$tools/lib"
CC_x86_64_pc_windows_msvc="$tools/cc" AR_x86_64_pc_windows_msvc="$tools/lib" \
  cargo clippy --lib --target x86_64-pc-windows-msvc -- -D warnings
