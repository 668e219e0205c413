#!/usr/bin/env bash
# Engine overhead: per test kernel, the median wall time of
# `bpfcompat test-command --cmd true` booting (--snapshots off) against the
# median bare boot of the same kernel with a trivial /init that resets at
# once (same QEMU flags), and their ratio (goal <= 1.15). Then snapshots:
# the cold first run (boot, save the guest, run the job; goal <= 1.3x the
# plain check) and the warm run restored from the snapshot (goal <= 0.5 s
# and <= 0.25x the bare boot under TCG), and each snapshot's size. Then all
# kernels in one run (booting) against the ideal parallel time, total
# single-kernel time / cores (goal <= 1.3).
#
# Usage: bench/engine.sh [RUNS]   (default 3; needs a built workspace:
#        cargo build --release)
cd "$(dirname "$0")/.."
runs="${1:-3}"
# shellcheck source=bench/lib.sh
. bench/lib.sh
cores=$(nproc)

# The trivial init: reset the machine at once (-no-reboot makes QEMU exit).
cat > "$work/init.c" <<'C'
#include <sys/reboot.h>
#include <unistd.h>
int main(void) { reboot(RB_AUTOBOOT); return 0; }
C
cc -static -O2 -o "$work/init" "$work/init.c"
(cd "$work" && mkdir -p root/dev && cp init root/init && cd root && echo init | cpio -o -H newc --quiet > ../bare.cpio)

accel_args() { if [ "$accel" = kvm ]; then echo "-accel kvm -cpu host"; else echo "-accel tcg -cpu max"; fi; }

bare_boot() {
  local t0; t0=$(now_ms)
  # shellcheck disable=SC2046
  qemu-system-x86_64 -nodefaults -no-user-config -no-reboot -display none -nic none $(accel_args) \
    -m 512 -smp 1 -kernel "$1" -initrd "$work/bare.cpio" \
    -append "console=ttyS0 panic=-1 oops=panic loglevel=4 rdinit=/init" \
    -serial null -serial null </dev/null >/dev/null 2>&1
  echo $(( $(now_ms) - t0 ))
}

run_bpfcompat() { time_bpfcompat test-command --cmd true --matrix "$@"; }
cold_run() { rm -rf "$work/cache/snapshots"; run_bpfcompat "$1"; }

printf '%-16s %9s %10s %6s %9s %6s %9s %6s %9s\n' kernel "bare(ms)" "check(ms)" ratio \
  "cold(ms)" "/check" "warm(ms)" "/bare" snapshot
total_single=0; slowest=0
for id in "${order[@]}"; do
  matrix_for "$id" > "$work/$id.yaml"
  run_bpfcompat "$work/$id.yaml" --snapshots off >/dev/null   # warm the kernel cache
  bare=$(for _ in $(seq "$runs"); do bare_boot "${image[$id]}"; done | median)
  check=$(for _ in $(seq "$runs"); do run_bpfcompat "$work/$id.yaml" --snapshots off; done | median)
  cold=$(for _ in $(seq "$runs"); do cold_run "$work/$id.yaml"; done | median)
  warm=$(for _ in $(seq "$runs"); do run_bpfcompat "$work/$id.yaml"; done | median)
  size=$(du -m --apparent-size "$work"/cache/snapshots/*/*.vmstate | awk '{print $1 " MB"}')
  printf '%-16s %9d %10d %6.2f %9d %6.2f %9d %6.2f %9s\n' "$id" "$bare" "$check" \
    "$(ratio "$check" "$bare")" "$cold" "$(ratio "$cold" "$check")" "$warm" \
    "$(ratio "$warm" "$bare")" "$size"
  rm -rf "$work/cache/snapshots"
  total_single=$((total_single + check))
  [ "$check" -gt "$slowest" ] && slowest=$check
done

matrix_for "${order[@]}" > "$work/all.yaml"
all=$(for _ in $(seq "$runs"); do run_bpfcompat "$work/all.yaml" --snapshots off; done | median)
ideal=$((total_single / cores))
echo
printf 'all %d kernels in one run: %d ms (slowest single kernel %d ms, %.2fx)\n' \
  "${#order[@]}" "$all" "$slowest" "$(ratio "$all" "$slowest")"
printf 'ideal parallel time (sum of singles %d ms / %d cores): %d ms; ratio %.2f (goal <= 1.30)\n' \
  "$total_single" "$cores" "$ideal" "$(ratio "$all" "$ideal")"
printf 'goals: check/bare <= 1.15, cold/check <= 1.3, warm <= 500 ms and warm/bare <= 0.25 (TCG)\n'
printf 'accel: %s, %s\n' "$accel" "$(qemu-system-x86_64 --version | head -n1)"
