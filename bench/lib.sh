# shellcheck shell=bash disable=SC2034 # variables are for the scripts that source this
# Shared by the benchmarks: the test kernels, timing and medians.
# Sourced from the project root; sets $work (removed on exit), $bin
# ($BPFCOMPAT_BENCH_BIN, default the release build), $accel.
set -euo pipefail
kernels="${BPFCOMPAT_TEST_KERNELS:-$PWD/../shared/kernels}"
bin="${BPFCOMPAT_BENCH_BIN:-$PWD/target/release/bpfcompat}"
[ -x "$bin" ] || { echo "build first: cargo build --release ($bin)" >&2; exit 1; }
accel="${BPFCOMPAT_BENCH_ACCEL:-tcg}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The 7.2 kernel ships only as a package: its image is extracted for the
# bare boots; bpfcompat itself takes the package.
dpkg-deb -x "$kernels"/packages/linux-binary-7.2.13+deb14-cloud-amd64_7.2.13-1_amd64.deb "$work/deb"
declare -A image=(
  [debian-11-5.10]="$kernels/vmlinuz-5.10.0-46-cloud-amd64"
  [debian-12-6.1]="$kernels/vmlinuz-6.1.0-47-cloud-amd64"
  [debian-13-6.12]="$kernels/vmlinuz-6.12.107+deb13-cloud-amd64"
  [debian-sid-7.2]="$(ls "$work"/deb/usr/lib/modules/*/vmlinuz)"
  [tiny-6.1-nobtf]="$kernels/vmlinuz-6.1.192-tiny-nobtf"
)
order=(debian-11-5.10 debian-12-6.1 debian-13-6.12 debian-sid-7.2 tiny-6.1-nobtf)

now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { echo "$1 / $2" | bc -l; }

matrix_for() { # ids...; each bare image with its config (a package ships its own)
  echo "name: bench"; echo "kernels:"
  for id in "$@"; do
    printf '  - id: %s\n' "$id"
    local config="$kernels/configs/config-$(basename "${image[$id]}" | sed 's/^vmlinuz-//')"
    [ ! -f "$config" ] || printf '    config: %s\n' "$config"
    printf '    source:\n      file: %s\n' "${image[$id]}"
  done
}

# Wall time in ms of one bpfcompat run with the given arguments.
time_bpfcompat() {
  local t0; t0=$(now_ms)
  "$bin" "$@" --out "$work/r.json" --accel "$accel" \
    --workdir "$work/wd" --cache-dir "$work/cache" >/dev/null 2>&1 || true
  echo $(( $(now_ms) - t0 ))
}
