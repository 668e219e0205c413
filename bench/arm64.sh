#!/usr/bin/env bash
# arm64 guests against x86 ones on this host, under TCG: Debian 6.1.170-3
# as its x86 and its arm64 package (the same Debian version), per-kernel
# wall time of `test-command --cmd true` booted (--snapshots off) and
# restored (a warm --snapshots auto run), and of `test` on six corpus
# objects booted; medians of RUNS, and arm64 / x86.
#
# Usage: bench/arm64.sh [RUNS]   (default 3; needs cargo build --release,
#        scripts/build-guest.sh aarch64 release, clang for the objects)
cd "$(dirname "$0")/.."
runs="${1:-3}"
# shellcheck source=bench/lib.sh
. bench/lib.sh
export BPFCOMPAT_GUEST_AARCH64="${BPFCOMPAT_GUEST_AARCH64:-$PWD/target/aarch64-unknown-linux-gnu/release/bpfcompat-guest}"
[ -x "$BPFCOMPAT_GUEST_AARCH64" ] || { echo "build the agent first: scripts/build-guest.sh aarch64 release" >&2; exit 1; }
sh tests/bpf/build.sh "$work/corpus" >/dev/null
objects=()
for o in xdp kprobe ksyscall tracepoint maps ringbuf; do objects+=(--artifact "$work/corpus/$o.bpf.o"); done

declare -A deb=(
  [x86_64]="$kernels/packages/linux-image-6.1.0-47-cloud-amd64_6.1.170-3_amd64.deb"
  [arm64]="$kernels/arm64/linux-image-6.1.0-47-cloud-arm64_6.1.170-3_arm64.deb"
)
for arch in x86_64 arm64; do
  printf 'name: bench\nkernels:\n  - id: debian-12-6.1\n    arch: %s\n    source:\n      file: %s\n' \
    "$arch" "${deb[$arch]}" >"$work/$arch.yaml"
done

declare -A figure
for arch in x86_64 arm64; do
  m=(--matrix "$work/$arch.yaml")
  time_bpfcompat test-command --cmd true "${m[@]}" >/dev/null # fetch and extract once
  figure[$arch,booted]=$(for _ in $(seq "$runs"); do time_bpfcompat test-command --cmd true "${m[@]}" --snapshots off; done | median)
  time_bpfcompat test-command --cmd true "${m[@]}" --snapshots auto >/dev/null # make the snapshot
  figure[$arch,restored]=$(for _ in $(seq "$runs"); do time_bpfcompat test-command --cmd true "${m[@]}" --snapshots auto; done | median)
  figure[$arch,objects]=$(for _ in $(seq "$runs"); do time_bpfcompat test "${objects[@]}" "${m[@]}" --snapshots off; done | median)
done
printf '%-28s %9s %9s %8s\n' "Debian 6.1.170-3, TCG" "x86 (ms)" "arm64 (ms)" "arm64/x86"
for what in booted restored objects; do
  case $what in
    booted) label="test-command, booted" ;;
    restored) label="test-command, restored" ;;
    objects) label="6 objects, booted" ;;
  esac
  x=${figure[x86_64,$what]} a=${figure[arm64,$what]}
  printf '%-28s %9d %9d %8.2f\n' "$label" "$x" "$a" "$(ratio "$a" "$x")"
done
