#!/usr/bin/env bash
# The path every user runs, second time: warm (snapshots restored) wall
# time of the README's first command on the five test kernels with the
# default --accel auto against --accel tcg (goal: auto <= 1.5 s and
# <= 1.2x tcg), on this host and on a simulated host whose KVM runs the
# probe guest but no kernel (the silence fallback's finding remembered).
# Then real-sized jobs: warm per-kernel time of nine corpus objects, of two
# objects of 1 MB incompressible data (a 2 MB job; goal <= 0.6 s per kernel
# restored) and of all eleven, each against the same job booted
# (--snapshots off), with how the job travelled.
#
# Usage: bench/jobs.sh [RUNS]   (default 3; needs cargo build --release)
cd "$(dirname "$0")/.."
runs="${1:-3}"
# shellcheck source=bench/lib.sh
. bench/lib.sh

readme() { # accel [PATH prefix]
  local t0; t0=$(now_ms)
  PATH="${2:-}$PATH" "$bin" test-command --cmd 'uname -r; ls /sys/fs/bpf' \
    --matrix matrices/test-kernels.yaml --accel "$1" --out "$work/readme.json" \
    --workdir "$work/wd" --cache-dir "$work/readme-cache" >/dev/null 2>&1 || true
  echo $(( $(now_ms) - t0 ))
}

# A KVM that runs the probe guest (booted with -bios) but no kernel: KVM
# requests become TCG guests, started paused (-S) unless they are the probe.
real_qemu=$(command -v qemu-system-x86_64)
mkdir -p "$work/fake-host"
cat > "$work/fake-host/qemu-system-x86_64" <<SH
#!/bin/bash
args=(); kvm=0; probe=0
for a in "\$@"; do
  case "\$a" in kvm) kvm=1; a=tcg ;; host) a=max ;; -bios) probe=1 ;; esac
  args+=("\$a")
done
if [ \$kvm = 1 ] && [ \$probe = 0 ]; then args=(-S "\${args[@]}"); fi
exec $real_qemu "\${args[@]}"
SH
chmod +x "$work/fake-host/qemu-system-x86_64"

echo "README's first command, five kernels, warm (median of $runs):"
printf '%-34s %9s %9s %7s\n' host "auto(ms)" "tcg(ms)" auto/tcg
for host in this "kvm-runs-no-kernel"; do
  prefix=""; [ "$host" = this ] || prefix="$work/fake-host:"
  rm -rf "$work/readme-cache"
  readme auto "$prefix" >/dev/null   # cold: fetch, find the accelerator, make snapshots
  auto=$(for _ in $(seq "$runs"); do readme auto "$prefix"; done | median)
  tcg=$(for _ in $(seq "$runs"); do readme tcg "$prefix"; done | median)
  printf '%-34s %9d %9d %7.2f\n' "$host" "$auto" "$tcg" "$(ratio "$auto" "$tcg")"
done

sh tests/bpf/build.sh "$work/corpus" >/dev/null
nine=(tracepoint kprobe ringbuf maps globals fentry xdp cgroup perf_event)
nine_args=(); for o in "${nine[@]}"; do nine_args+=(--artifact "$work/corpus/$o.bpf.o"); done
two_mb=()
for seed in 1 2; do
  sh tests/bpf/make_big.sh "$work/big-$seed.bpf.o" 1000000 "$seed"
  two_mb+=(--artifact "$work/big-$seed.bpf.o")
done

# Per-kernel total ms, restored flag and channel of the last report.
per_kernel() {
  python3 - "$work/r.json" <<'PY'
import json, sys
for t in json.load(open(sys.argv[1]))["targets"]:
    print(t["id"], t["timing_ms"]["total"], "restored" if t.get("restored") else "booted",
          t.get("job_channel", "-"))
PY
}

job() { # name args...
  local name=$1; shift
  local matrix="$work/all.yaml"
  matrix_for "${order[@]}" > "$matrix"
  rm -rf "$work/cache/snapshots"
  time_bpfcompat test --matrix "$matrix" "$@" --snapshots off >/dev/null
  per_kernel > "$work/booted"
  time_bpfcompat test --matrix "$matrix" "$@" >/dev/null   # cold: makes the snapshots
  for i in $(seq "$runs"); do time_bpfcompat test --matrix "$matrix" "$@" >/dev/null; per_kernel > "$work/warm-$i"; done
  echo
  local job_kib
  job_kib=$(du -k "$(ls -t "$work"/wd/runs/*/debian-12-6.1/job.cpio | head -n1)" | cut -f1)
  echo "$name, a job of $job_kib KiB (median of $runs):"
  printf '%-16s %10s %10s %6s %s\n' kernel "booted(ms)" "warm(ms)" ratio "how"
  for id in "${order[@]}"; do
    booted=$(awk -v id="$id" '$1 == id {print $2}' "$work/booted")
    warm=$(cat "$work"/warm-* | awk -v id="$id" '$1 == id {print $2}' | median)
    how=$(awk -v id="$id" '$1 == id {print $3, $4}' "$work/warm-1")
    printf '%-16s %10d %10d %6.2f %s\n' "$id" "$booted" "$warm" "$(ratio "$warm" "$booted")" "$how"
  done
}
job "nine objects" "${nine_args[@]}"
job "2 MB: two objects of 1 MB" "${two_mb[@]}"
job "nine objects + 2 MB" "${nine_args[@]}" "${two_mb[@]}"
