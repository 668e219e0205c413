#!/usr/bin/env bash
# The preflight: how fast `test --predict-only` judges every corpus object
# against every test kernel's BTF (goal: <= 5 ms per object x kernel with
# the BTF cached), cold (BTF read out of each image) and warm; then how the
# predictions agree with a real run of the same matrix: cells predicted
# blocked that passed (goal: 0), and the share of failing cells that had a
# predicted reason (goal: >= 80 %).
#
# Usage: bench/preflight.sh [RUNS]   (default 3; needs cargo build --release,
#        clang and libbpf-dev for the corpus)
cd "$(dirname "$0")/.."
runs="${1:-3}"
# shellcheck source=bench/lib.sh
. bench/lib.sh

sh tests/bpf/build.sh "$work/corpus" >/dev/null
objects=()
for o in "$work"/corpus/*.bpf.o; do
  case "$(basename "$o")" in not_elf.bpf.o | truncated.bpf.o) continue ;; esac
  objects+=(--artifact "$o")
done
matrix_for "${order[@]}" >"$work/matrix.yaml"

predict() { # prints the wall time in ms; the timing line goes to $work/line
  local t0; t0=$(now_ms)
  "$bin" test --predict-only --matrix "$work/matrix.yaml" "${objects[@]}" \
    --out "$work/preflight.json" --cache-dir "$work/cache" >/dev/null 2>"$work/err" || true
  echo $(( $(now_ms) - t0 ))
  grep 'preflight of' "$work/err" >"$work/line"
}

cells=$(( ${#objects[@]} / 2 * ${#order[@]} ))
echo "Preflight: $(( ${#objects[@]} / 2 )) objects x ${#order[@]} kernels = $cells cells"
cold=$(predict)
echo "  cold (BTF read out of each image): $cold ms; $(sed 's/^bpfcompat: //' "$work/line")"
warm=$(for _ in $(seq "$runs"); do predict; done | median)
echo "  warm (BTF cached), median of $runs: $warm ms; $(sed 's/^bpfcompat: //' "$work/line")"
printf '  warm wall time per cell: %.2f ms (goal <= 5 ms)\n' "$(ratio "$warm" "$cells")"

echo "Agreement with a real run of the same matrix ($accel):"
"$bin" test --matrix "$work/matrix.yaml" "${objects[@]}" --timeout 10m \
  --out "$work/report.json" --accel "$accel" --workdir "$work/wd" \
  --cache-dir "$work/cache" >/dev/null 2>&1 || true
python3 - "$work/report.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))["summary"]["prediction"]
bf, bp, fu, cp = (a[k] for k in ("blocked_and_failed", "blocked_but_passed", "failed_unpredicted", "clear_and_passed"))
print(f"  predicted blocked and failed:        {bf}")
print(f"  predicted blocked but passed:        {bp} (goal 0: each is a prediction bug)")
print(f"  failed with no obstacle predicted:   {fu} (runtime failures: verifier, config, attach)")
print(f"  no obstacle, and passed or partial:  {cp}")
print(f"  failing cells with a predicted reason: {100 * bf / max(bf + fu, 1):.0f} % (goal >= 80 %)")
PY
