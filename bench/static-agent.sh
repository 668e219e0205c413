#!/usr/bin/env bash
# The static guest agent (the release build, scripts/build-release.sh)
# against the dynamic one (`cargo build --release`): the initramfs each
# gives, its size and the shared libraries in it, and per test kernel the
# median wall time of `test-command --cmd true` and of `test` on one object.
# The same host binary runs both; BPFCOMPAT_GUEST picks the agent.
#
# Usage: bench/static-agent.sh [RUNS]   (default 3; needs both builds,
#        clang and libbpf-dev for the object)
cd "$(dirname "$0")/.."
runs="${1:-3}"
static_dir="$PWD/target/x86_64-unknown-linux-gnu/release"
export BPFCOMPAT_BENCH_BIN="${BPFCOMPAT_BENCH_BIN:-$static_dir/bpfcompat}"
# shellcheck source=bench/lib.sh
. bench/lib.sh
declare -A agent=([dynamic]="$PWD/target/release/bpfcompat-guest" [static]="$static_dir/bpfcompat-guest")
for a in dynamic static; do
  [ -x "${agent[$a]}" ] || { echo "no $a agent at ${agent[$a]}" >&2; exit 1; }
done
sh tests/bpf/build.sh "$work/corpus" >/dev/null
object=(--artifact "$work/corpus/xdp.bpf.o")

printf '%-8s %11s %15s  %s\n' agent "agent (KB)" "initramfs (KB)" "shared libraries in the initramfs"
matrix_for tiny-6.1-nobtf > "$work/tiny.yaml"
for a in dynamic static; do
  rm -rf "$work/wd"
  BPFCOMPAT_GUEST=${agent[$a]} time_bpfcompat test-command --cmd true --matrix "$work/tiny.yaml" >/dev/null
  cpio=$(ls "$work"/wd/runs/*/initramfs.cpio)
  libs=$(cpio -t --quiet <"$cpio" | grep '\.so' | xargs -n1 basename | sort | tr '\n' ' ')
  printf '%-8s %11d %15d  %s\n' "$a" $(( $(stat -c %s "${agent[$a]}") / 1024 )) $(( $(stat -c %s "$cpio") / 1024 )) "$libs"
done

echo
printf '%-16s %13s %13s %7s %13s %13s %7s\n' kernel "cmd dyn (ms)" "cmd st (ms)" ratio "obj dyn (ms)" "obj st (ms)" ratio
for id in "${order[@]}"; do
  matrix_for "$id" > "$work/$id.yaml"
  time_bpfcompat test-command --cmd true --matrix "$work/$id.yaml" >/dev/null   # warm the kernel cache
  declare -A cmd=() obj=()
  for a in dynamic static; do
    export BPFCOMPAT_GUEST=${agent[$a]}
    cmd[$a]=$(for _ in $(seq "$runs"); do time_bpfcompat test-command --cmd true --matrix "$work/$id.yaml"; done | median)
    obj[$a]=$(for _ in $(seq "$runs"); do time_bpfcompat test "${object[@]}" --matrix "$work/$id.yaml"; done | median)
  done
  unset BPFCOMPAT_GUEST
  printf '%-16s %13d %13d %7.2f %13d %13d %7.2f\n' "$id" \
    "${cmd[dynamic]}" "${cmd[static]}" "$(ratio "${cmd[static]}" "${cmd[dynamic]}")" \
    "${obj[dynamic]}" "${obj[static]}" "$(ratio "${obj[static]}" "${obj[dynamic]}")"
done
printf 'accel: %s, %s\n' "$accel" "$(qemu-system-x86_64 --version | head -n1)"
