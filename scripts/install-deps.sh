#!/usr/bin/env bash
# Installs the system packages bpfcompat needs to build, run and test on a
# Debian or Ubuntu machine. Idempotent; run as root (or with sudo available).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Debian 12's QEMU 7.2 mis-emulates cmpxchg16b under TCG and crashes some
# guests (6.12 double-faults in __kmalloc); QEMU 10 from bookworm-backports
# does not. Disabling cx16 instead would change verdicts, so we upgrade QEMU.
# The backports stanza is derived from the machine's own first apt source so
# no mirror host is hard-coded here.
qemu_suite=""
if [ -r /etc/os-release ] && . /etc/os-release && [ "${VERSION_CODENAME:-}" = bookworm ]; then
  qemu_suite="bookworm-backports"
  src=/etc/apt/sources.list.d/debian.sources
  dst=/etc/apt/sources.list.d/bpfcompat-backports.sources
  if [ -f "$src" ] && [ ! -f "$dst" ]; then
    awk 'BEGIN{RS=""; ORS="\n"} NR==1{print; exit}' "$src" \
      | sed -E 's/^Suites:.*/Suites: bookworm-backports/' | $SUDO tee "$dst" >/dev/null
  elif [ ! -f "$dst" ] && [ -f /etc/apt/sources.list ]; then
    first=$(grep -m1 -E '^deb ' /etc/apt/sources.list | awk '{print $2}')
    echo "deb $first bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/bpfcompat-backports.list >/dev/null
  fi
fi

export DEBIAN_FRONTEND=noninteractive
# arm64 guests need arm64 packages (the Rust standard library for the
# aarch64 agent, busybox): Debian serves every architecture from one archive.
debian_arm64=""
if [ -r /etc/os-release ] && . /etc/os-release && [ "${ID:-}" = debian ] && [ "$(dpkg --print-architecture)" = amd64 ]; then
  debian_arm64=yes
  dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
fi
$SUDO apt-get update -qq

packages=(
  # guest userland for command mode (bpftool: on the guest's PATH)
  bash busybox-static bpftool
  # BPF test corpus and libbpf's vendored build
  clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config make gcc
  autoconf automake autopoint flex bison gawk
  # tests and benchmarks: a C compiler with static libc, cpio, bc
  python3 cpio xz-utils zstd bc libc6-dev curl
  # the HTML report's browser tests: Chromium driven over WebDriver
  chromium chromium-driver fonts-noto-color-emoji
)
$SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}"
# npm fetches axe-core for the browser tests; a machine whose Node.js
# already ships npm keeps it (Debian's npm would conflict with it).
if ! command -v npm >/dev/null; then
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi
# axe-core, pinned by tests/browser/package-lock.json (its digest).
npm ci --prefix "$(dirname "$0")/../tests/browser" --no-audit --no-fund --loglevel=error
qemu=(qemu-system-x86 qemu-system-arm)
if [ -n "$qemu_suite" ]; then
  $SUDO apt-get install -y -qq --no-install-recommends -t "$qemu_suite" "${qemu[@]}"
else
  $SUDO apt-get install -y -qq --no-install-recommends "${qemu[@]}"
fi
qemu-system-x86_64 --version | head -n1
qemu-system-aarch64 --version | head -n1

# arm64 guests on this x86_64 host: the aarch64 agent's cross toolchain
# (gcc, and Debian's rustc-web, whose libstd-rust-web-dev:arm64 is the
# aarch64 standard library: scripts/build-guest.sh), arm64 kernel headers
# for the BPF corpus, and Debian's static busybox for arm64 command mode at
# /usr/local/lib/bpfcompat/aarch64/busybox (where bpfcompat looks).
# Elsewhere (Ubuntu's runners) the standard library comes from rustup, and
# busybox from Debian's archive when BPFCOMPAT_DEBIAN_MIRROR names a mirror
# (its base URL, as for scripts/fetch-test-kernels.sh), checked by its
# digest; without one, arm64 command mode needs BPFCOMPAT_BUSYBOX_AARCH64.
$SUDO apt-get install -y -qq --no-install-recommends \
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross linux-libc-dev-arm64-cross
if [ -z "$debian_arm64" ] && command -v rustup >/dev/null; then
  rustup target add aarch64-unknown-linux-gnu
fi
if [ -n "$debian_arm64" ]; then
  $SUDO apt-get install -y -qq --no-install-recommends rustc-web libstd-rust-web-dev:arm64
fi
busybox_dir=/usr/local/lib/bpfcompat/aarch64
busybox_deb=pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_arm64.deb
busybox_sha256=732c9135564fc71337e0e05fb4da4d11e6c28c1834bce3e405e575afef2a52f5
if [ ! -x "$busybox_dir/busybox" ] && { [ -n "$debian_arm64" ] || [ -n "${BPFCOMPAT_DEBIAN_MIRROR:-}" ]; }; then
  tmp=$(mktemp -d) && chmod 0755 "$tmp"
  if [ -n "$debian_arm64" ]; then
    (cd "$tmp" && apt-get download -qq busybox-static:arm64 && mv busybox-static_*_arm64.deb busybox.deb)
  else
    curl -fsSL --retry 3 -o "$tmp/busybox.deb" "${BPFCOMPAT_DEBIAN_MIRROR%/}/$busybox_deb"
    echo "$busybox_sha256  $tmp/busybox.deb" | sha256sum -c --quiet
  fi
  dpkg-deb -x "$tmp/busybox.deb" "$tmp/root"
  $SUDO install -D -m 0755 "$tmp/root/bin/busybox" "$busybox_dir/busybox"
  rm -rf "$tmp"
fi
