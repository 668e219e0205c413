#!/usr/bin/env bash
# Builds the release archive the action downloads, the one way it is built:
# the release workflow ships what this script makes, and .ci/run tests it
# (tests/release.rs). Usage: scripts/build-release.sh [DIST]   (default dist/)
#
#   DIST/bpfcompat-x86_64-linux.tar.gz          bpfcompat, bpfcompat-guest and
#                                                bpfcompat-guest-aarch64 (the agent of
#                                                arm64 guests, scripts/build-guest.sh)
#   DIST/bpfcompat-x86_64-linux.tar.gz.sha256   its digest, which the action checks
#   DIST/bpfcompat-x86_64-linux.cdx.json        CycloneDX SBOM of Cargo.lock, when
#                                                cargo-cyclonedx is installed
#                                                (BPFCOMPAT_SBOM=required: or fail)
#
# Both binaries are static (glibc's libc.a via crt-static, with libbpf, libelf
# and zlib from the vendored sources): no program interpreter, no shared
# library, so they run on any x86_64 Linux whatever its libc, and the agent
# brings no library into the initramfs. The explicit --target keeps RUSTFLAGS
# off build scripts and proc macros, which still link as host programs.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-gnu
name=bpfcompat-x86_64-linux
dist=$(mkdir -p "${1:-dist}" && cd "${1:-dist}" && pwd)
out="${CARGO_TARGET_DIR:-$PWD/target}/$target/release"

RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --release --locked --target "$target" -p bpfcompat
arm64_agent=$(bash scripts/build-guest.sh aarch64 release | tail -n1)
cp "$arm64_agent" "$out/bpfcompat-guest-aarch64"

# Reproducible: fixed order, owner and mtime (the commit's), no gzip name
# or timestamp, so a rebuild of a commit gives the same digest.
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
  --mode=0755 -C "$out" -cf - bpfcompat bpfcompat-guest bpfcompat-guest-aarch64 |
  gzip -n -9 >"$dist/$name.tar.gz"
(cd "$dist" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")

sbom="$dist/$name.cdx.json"
rm -f "$sbom"
if cargo cyclonedx --version >/dev/null 2>&1; then
  # One SBOM for what the archive holds: the bpfcompat package and every
  # crate it links on this target (the agent's included), from Cargo.lock.
  cargo cyclonedx --manifest-path Cargo.toml --format json --spec-version 1.5 \
    --target "$target" --override-filename "$name.cdx" --quiet
  # It writes one per workspace member: keep the root package's.
  rm -f ./*/"$name.cdx.json"
  mv "$name.cdx.json" "$sbom"
elif [ "${BPFCOMPAT_SBOM:-}" = required ]; then
  echo "cargo-cyclonedx is not installed: cargo install --locked cargo-cyclonedx" >&2
  exit 1
fi
ls -l "$dist"
