#!/usr/bin/env bash
# report.html at real size: a real run of ten corpus objects on the five
# test kernels, its checks repeated under new names to 100 objects x 5
# kernels, then `bpfcompat report --html` timed (goal: <= 200 ms to render,
# reading the JSON included) and the page measured (goal: <= 1.5 MB; the
# verifier logs are cut in the page, the JSON keeps them whole).
#
# Usage: bench/report.sh [RUNS]   (default 5; needs cargo build --release,
#        clang and libbpf-dev for the corpus)
cd "$(dirname "$0")/.."
runs="${1:-5}"
# shellcheck source=bench/lib.sh
. bench/lib.sh

sh tests/bpf/build.sh "$work/corpus" >/dev/null
objects=()
for o in xdp bpf_loop fentry_missing kprobe core_missing_field helper_wrong_type \
  verifier_null ringbuf tracepoint kfunc_missing; do
  objects+=(--artifact "$work/corpus/$o.bpf.o")
done
matrix_for "${order[@]}" >"$work/matrix.yaml"
"$bin" test --matrix "$work/matrix.yaml" "${objects[@]}" --out "$work/run.json" \
  --accel "$accel" --workdir "$work/wd" --cache-dir "$work/cache" >/dev/null 2>&1 || true
python3 - "$work/run.json" "$work/big.json" <<'PY'
import copy, json, sys
report = json.load(open(sys.argv[1]))
for t in report["targets"]:
    checks = t["checks"]
    t["checks"] = []
    for i in range(10):
        for c in checks:
            c = copy.deepcopy(c)
            c["artifact"]["name"] = c["artifact"]["name"].replace(".bpf.o", f"-{i}.bpf.o")
            t["checks"].append(c)
json.dump(report, open(sys.argv[2], "w"))
PY
objs=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["targets"][0]["checks"]))' "$work/big.json")
render() {
  local t0; t0=$(now_ms)
  "$bin" report --html "$work/report.html" --workdir "$work/wd" "$work/big.json" >/dev/null
  echo $(( $(now_ms) - t0 ))
}
render >/dev/null
ms=$(for _ in $(seq "$runs"); do render; done | median)
json_kb=$(( $(stat -c %s "$work/big.json") / 1024 ))
page_kb=$(( $(stat -c %s "$work/report.html") / 1024 ))
echo "report.html of $objs objects x ${#order[@]} kernels (from a $json_kb KB report.json):"
printf '  render, median of %s: %s ms (goal <= 200 ms: %.2f of it)\n' "$runs" "$ms" "$(ratio "$ms" 200)"
printf '  page: %s KB (goal <= 1536 KB: %.2f of it; %.2f of the JSON)\n' \
  "$page_kb" "$(ratio "$page_kb" 1536)" "$(ratio "$page_kb" "$json_kb")"
