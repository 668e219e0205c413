#!/usr/bin/env bash
# Guest memory: what each kind of check uses of its guest, per test kernel,
# from the agent's own figures in the report (kernel.memory): MemTotal less
# the lowest MemAvailable seen (after setup, after the job, after each
# check), and the peak resident size of the agent and of the largest
# command. Modes: the validator on the whole corpus, behavior mode on the
# corpus, a command, and the validator restored from a snapshot. Prints the
# used peak and its share of the guest's memory, to size the default
# (run::engine::DEFAULT_MEMORY_MB; docs/reliability.md has the margin).
#
# Usage: bench/memory.sh   (needs a built workspace; BPFCOMPAT_BENCH_BIN
#        picks the build, e.g. target/debug/bpfcompat for the debug agent)
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
sh tests/bpf/build.sh "$work/corpus" >/dev/null
objects=()
for o in "$work"/corpus/*.bpf.o; do
  case "$o" in */not_elf.bpf.o|*/truncated.bpf.o) continue ;; esac
  objects+=(--artifact "$o")
done
matrix_for "${order[@]}" > "$work/all.yaml"

report() { # mode
  python3 - "$1" "$work/r.json" <<'PY'
import json, sys
mode, path = sys.argv[1], sys.argv[2]
for t in json.load(open(path))["targets"]:
    m = t["kernel"].get("memory")
    if not m:
        print(f"{mode:<10} {t['id']:<16} (no figures: {t['status']})")
        continue
    used = (m["total_kb"] - m["min_available_kb"]) // 1024
    total = m["total_kb"] // 1024
    print(f"{mode:<10} {t['id']:<16} {total:>6} {used:>8} {used * 100 // total:>5}% "
          f"{m['agent_peak_rss_kb'] // 1024:>10} {m['children_peak_rss_kb'] // 1024:>10}")
PY
}

printf '%-10s %-16s %6s %8s %6s %10s %10s\n' mode kernel "MB" "used MB" share "agent MB" "child MB"
time_bpfcompat test --matrix "$work/all.yaml" "${objects[@]}" --timeout 10m --snapshots off >/dev/null
report validator
time_bpfcompat test --matrix "$work/all.yaml" "${objects[@]}" --timeout 10m --snapshots off \
  --validation-mode behavior >/dev/null
report behavior
time_bpfcompat test-command --matrix "$work/all.yaml" --cmd 'bpftool prog list; uname -a' \
  --snapshots off >/dev/null
report command
time_bpfcompat test --matrix "$work/all.yaml" "${objects[@]}" --timeout 10m >/dev/null  # makes snapshots
time_bpfcompat test --matrix "$work/all.yaml" "${objects[@]}" --timeout 10m >/dev/null
report restored
