#!/usr/bin/env bash
# Builds the guest agent for arm64 guests on an x86_64 host: static, with the
# vendored libbpf, libelf and zlib, cross-compiled with Debian's aarch64 gcc.
# bpfcompat finds it in target/aarch64-unknown-linux-gnu/<profile>/ (or
# beside itself as bpfcompat-guest-aarch64, as the release archive ships it).
#
# Usage: scripts/build-guest.sh aarch64 [debug|release]   (default debug)
#
# The Rust standard library for aarch64 comes from the toolchain on PATH
# when it has it (`rustup target add aarch64-unknown-linux-gnu`), else from
# Debian's rustc-web with libstd-rust-web-dev:arm64, which
# scripts/install-deps.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."

arch=${1:-}
profile=${2:-debug}
if [ "$arch" != aarch64 ]; then
  echo "usage: scripts/build-guest.sh aarch64 [debug|release]" >&2
  exit 2
fi
case "$profile" in
  debug) flags=() ;;
  release) flags=(--release) ;;
  *) echo "profile must be debug or release, not $profile" >&2; exit 2 ;;
esac
target=aarch64-unknown-linux-gnu

# A rustc whose sysroot has the aarch64 standard library.
has_std() { ls "$("$1" --print target-libdir --target "$target" 2>/dev/null)"/libstd-*.rlib >/dev/null 2>&1; }
rustc=""
for candidate in "${RUSTC:-rustc}" /usr/bin/rustc; do
  if command -v "$candidate" >/dev/null && has_std "$candidate"; then
    rustc=$(command -v "$candidate")
    break
  fi
done
if [ -z "$rustc" ]; then
  echo "no rustc with the $target standard library: run scripts/install-deps.sh" \
    "(Debian's rustc-web and libstd-rust-web-dev:arm64), or" \
    "\`rustup target add $target\`" >&2
  exit 1
fi
for tool in aarch64-linux-gnu-gcc aarch64-linux-gnu-ar; do
  command -v "$tool" >/dev/null || {
    echo "$tool is missing: run scripts/install-deps.sh (gcc-aarch64-linux-gnu)" >&2
    exit 1
  }
done

# --target keeps RUSTFLAGS off build scripts, which run on the host.
RUSTC="$rustc" \
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
  CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
  AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --locked "${flags[@]}" --target "$target" -p bpfcompat --bin bpfcompat-guest
echo "${CARGO_TARGET_DIR:-$PWD/target}/$target/$profile/bpfcompat-guest"
