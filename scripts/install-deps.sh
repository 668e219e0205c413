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
$SUDO apt-get update -qq

packages=(
  # guest userland for command mode (bpftool: on the guest's PATH)
  bash busybox-static bpftool
  # BPF test corpus and libbpf's vendored build
  clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config make gcc
  autoconf automake autopoint flex bison gawk
  # tests and benchmarks: a C compiler with static libc, cpio, bc
  python3 cpio xz-utils zstd bc libc6-dev
)
$SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}"
if [ -n "$qemu_suite" ]; then
  $SUDO apt-get install -y -qq --no-install-recommends -t "$qemu_suite" qemu-system-x86
else
  $SUDO apt-get install -y -qq --no-install-recommends qemu-system-x86
fi
qemu-system-x86_64 --version | head -n1
