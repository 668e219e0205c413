#!/usr/bin/env bash
# Validator cost: per test kernel, the median wall time of `bpfcompat test`
# checking 1 object against checking 10 objects in the same boot (goal: ten
# cost under 1.3x one), and the validator's own time per object inside the
# guest (from the report's validation.duration_ms). Then the whole corpus on
# all kernels in one run: booting (--snapshots off) against restored from
# warm snapshots.
#
# Also: the same ten objects in behavior mode against the default mode.
#
# Usage: bench/validator.sh [RUNS]   (default 3; needs `cargo build --release`,
#        clang and libbpf-dev for the corpus)
cd "$(dirname "$0")/.."
runs="${1:-3}"
# shellcheck source=bench/lib.sh
. bench/lib.sh

sh tests/bpf/build.sh "$work/corpus" >/dev/null
# Ten objects of different program types that load on every test kernel.
ten=(tracepoint raw_tp maps ringbuf perf_event xdp uprobe cgroup tc kprobe)
one=(--artifact "$work/corpus/${ten[0]}.bpf.o")
all=()
for o in "${ten[@]}"; do all+=(--artifact "$work/corpus/$o.bpf.o"); done

# The validator's mean time per object in the last report.
per_object() {
  python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["targets"][0]["checks"]; print(round(sum(x["validation"]["duration_ms"] for x in c)/len(c)))' "$work/r.json"
}

printf '%-16s %12s %13s %7s %17s\n' kernel "1 obj (ms)" "10 objs (ms)" ratio "validator/obj (ms)"
for id in "${order[@]}"; do
  matrix_for "$id" > "$work/$id.yaml"
  time_bpfcompat test "${one[@]}" --matrix "$work/$id.yaml" >/dev/null   # warm the cache
  t1=$(for _ in $(seq "$runs"); do time_bpfcompat test "${one[@]}" --matrix "$work/$id.yaml"; done | median)
  t10=$(for _ in $(seq "$runs"); do time_bpfcompat test "${all[@]}" --matrix "$work/$id.yaml"; done | median)
  printf '%-16s %12d %13d %7.2f %17d\n' "$id" "$t1" "$t10" "$(ratio "$t10" "$t1")" "$(per_object)"
done
printf 'accel: %s, %s\n' "$accel" "$(qemu-system-x86_64 --version | head -n1)"

# Behavior mode: the same ten objects, each attached, held while the
# built-in workload runs, and its run statistics read; against the default
# mode (load-attach) in the same boot. The validator's time per object is
# what behavior adds; the default mode must not pay for it (compare its
# column with an older build through BPFCOMPAT_BENCH_BIN).
printf '\n%-16s %18s %19s %22s %23s %7s\n' kernel "load-attach (ms)" "behavior (ms)" "load-attach/obj (ms)" "behavior/obj (ms)" ratio
for id in "${order[@]}"; do
  ta=$(for _ in $(seq "$runs"); do time_bpfcompat test "${all[@]}" --matrix "$work/$id.yaml"; done | median)
  pa=$(per_object)
  tb=$(for _ in $(seq "$runs"); do time_bpfcompat test "${all[@]}" --validation-mode behavior --matrix "$work/$id.yaml"; done | median)
  pb=$(per_object)
  printf '%-16s %18d %19d %22d %23d %7.2f\n' "$id" "$ta" "$tb" "$pa" "$pb" "$(ratio "$pb" "$pa")"
done

# The corpus, all objects on all kernels, booted and restored (warm).
# (not those bpfcompat refuses before booting: `open:` in the ground truth)
corpus=()
for o in "$work"/corpus/*.bpf.o; do
  grep -q "^| $(basename "$o" .bpf.o) | open: " tests/bpf/GROUND_TRUTH.md || corpus+=(--artifact "$o")
done
matrix_for "${order[@]}" > "$work/all.yaml"
time_bpfcompat test "${corpus[@]}" --matrix "$work/all.yaml" --timeout 10m >/dev/null   # make the snapshots
booted=$(for _ in $(seq "$runs"); do time_bpfcompat test "${corpus[@]}" --matrix "$work/all.yaml" --timeout 10m --snapshots off; done | median)
warm=$(for _ in $(seq "$runs"); do time_bpfcompat test "${corpus[@]}" --matrix "$work/all.yaml" --timeout 10m; done | median)
restored=$(python3 -c 'import json,sys; print(sum(1 for t in json.load(open(sys.argv[1]))["targets"] if t.get("restored")))' "$work/r.json")
printf '\ncorpus (%d objects) on %d kernels: booted %d ms, restored %d ms (%.2fx; %d kernels restored)\n' \
  "$(( ${#corpus[@]} / 2 ))" "${#order[@]}" "$booted" "$warm" "$(ratio "$warm" "$booted")" "$restored"

# Isolation: a 30-program object whose whole load fails on one program
# (bench/bpf/thirty_programs.bpf.c). The validator finds the culprit by
# loading the programs still in question together (one load per failing
# program, plus one) instead of each alone. Measured here, TCG, debug
# build, 6.1: 417-882 ms per object one by one, 125-129 ms together, with
# identical program verdicts.
clang -target bpf -O2 -g -D__TARGET_ARCH_x86 -I"/usr/include/$(gcc -print-multiarch)" \
  -Itests/bpf -c bench/bpf/thirty_programs.bpf.c -o "$work/thirty.bpf.o"
printf '\n%-16s %14s %20s\n' kernel "30 progs (ms)" "validator/obj (ms)"
for id in "${order[@]}"; do
  t=$(for _ in $(seq "$runs"); do time_bpfcompat test --artifact "$work/thirty.bpf.o" --matrix "$work/$id.yaml"; done | median)
  per=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["targets"][0]["checks"][0]["validation"]["duration_ms"])' "$work/r.json")
  printf '%-16s %14d %20d\n' "$id" "$t" "$per"
done
