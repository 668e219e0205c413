#!/usr/bin/env bash
# The freshness check of kernel matrices (the shipped ones by default):
# every source still published (`kernels verify --remote`) and every
# `sweep:` current (`kernels outdated`). Prints a Markdown report for an
# issue; exits 0 when all is fresh, 1 when a source is gone, a newer point
# release is out or a check could not run.
#
# Usage: scripts/freshness.sh [MATRIX...]   (BPFCOMPAT_BIN: the binary)
set -uo pipefail
bin=${BPFCOMPAT_BIN:-bpfcompat}
matrices=("$@")
if [ ${#matrices[@]} -eq 0 ]; then
  cd "$(dirname "$0")/.." || exit 1
  matrices=(matrices/*.yaml)
fi
stale=0
echo "# Kernel matrix freshness, $(date -u +%Y-%m-%d)"
for matrix in "${matrices[@]}"; do
  for check in "verify --remote" outdated; do
    # shellcheck disable=SC2086 # the check is two words on purpose
    out=$("$bin" kernels $check --matrix "$matrix" 2>&1)
    code=$?
    [ "$code" -eq 0 ] && continue
    stale=1
    # shellcheck disable=SC2016 # the backquotes are Markdown's
    printf '\n## `%s`: `bpfcompat kernels %s` exited %d\n\n```\n%s\n```\n' \
      "$matrix" "$check" "$code" "$out"
  done
done
if [ "$stale" -eq 0 ]; then
  printf '\nEvery source of %d matrices is published and every sweep is current.\n' "${#matrices[@]}"
fi
exit "$stale"
