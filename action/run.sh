#!/usr/bin/env bash
# The steps of the bpfcompat composite action (action.yml). Inputs arrive as
# BPFCOMPAT_* environment variables, never pasted into this script, so they
# are data to the shell, not code. Usage: run.sh STEP
set -euo pipefail

action_dir="${GITHUB_ACTION_PATH:-$(cd "$(dirname "$0")/.." && pwd)}"

die() {
  echo "::error::bpfcompat: $*" >&2
  exit 1
}

output() {
  # Our values are paths and hashes: one line each.
  printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
}

# A value of action/RELEASE: the release these scripts belong to.
release_value() {
  local value
  value=$(sed -n "s/^$1=//p" "$action_dir/action/RELEASE")
  [ -n "$value" ] || die "action/RELEASE names no $1"
  printf '%s' "$value"
}

sudo_() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# The matrix: a file in the workspace (printed as its absolute path), else
# the name of one of the matrices built into bpfcompat (printed as the name,
# which bpfcompat resolves itself, keeping its lock file in the workspace).
resolve_matrix() {
  local matrix=$1
  if [ -f "$matrix" ]; then
    realpath "$matrix"
    return
  fi
  [[ "$matrix" =~ ^[A-Za-z0-9._-]+$ ]] || die "matrix '$matrix' is not a file"
  # The matrices bpfcompat ships; test-kernels* are the project's own
  # tests' (local files), not built in.
  if [[ "$matrix" != test-kernels* ]] && [ -f "$action_dir/matrices/$matrix.yaml" ]; then
    echo "$matrix"
    return
  fi
  local names=() candidate
  for candidate in "$action_dir"/matrices/*.yaml; do
    case "$(basename "$candidate")" in test-kernels*) continue ;; esac
    [ -e "$candidate" ] && names+=("$(basename "${candidate%.*}")")
  done
  die "matrix '$matrix' is neither a file nor one of the built-in matrices: ${names[*]:-none}"
}

# Where bpfcompat keeps the lock file of the matrix resolve_matrix printed:
# beside a matrix file, in .bpfcompat/ of the workspace for a built-in one.
lock_file_of() {
  case "$1" in
    /*) echo "$1.lock" ;;
    *) echo "${GITHUB_WORKSPACE:-$PWD}/.bpfcompat/$1.lock" ;;
  esac
}

# One of the words an input may be.
one_of() {
  local input=$1 value=$2 word
  shift 2
  for word in "$@"; do [ "$value" = "$word" ] && return; done
  die "$input '$value' is not one of: $*"
}

# Release builds are x86_64 Linux only, and so is the guest agent that runs
# inside the x86_64 kernels: anything else stops here, before any download.
step_check_runner() {
  local os=${RUNNER_OS:-$(uname -s)} arch=${RUNNER_ARCH:-$(uname -m)}
  case "$os/$arch" in
    Linux/X64 | Linux/x86_64) echo "runner: $os $arch" ;;
    *) die "no release build for $os $arch runners; supported: Linux X64 (ubuntu-22.04, ubuntu-24.04, self-hosted x86_64 Linux); from source on an x86_64 Linux host: cargo install --locked --path . (see README)" ;;
  esac
}

# Every input is checked here, before QEMU or bpfcompat is downloaded: a
# typo costs seconds, not a fetched toolchain and a matrix of kernels.
step_resolve() {
  local mode=${BPFCOMPAT_MODE:-full}
  one_of mode "$mode" full test publish plan merge
  one_of comment "${BPFCOMPAT_COMMENT:-true}" true false on-failure
  one_of fail-on "${BPFCOMPAT_FAIL_ON:-required}" required any regression any-change min-kernel-raised never
  one_of compare-base "${BPFCOMPAT_COMPARE_BASE:-true}" true false
  check_version "${BPFCOMPAT_VERSION:-}"
  local name=${BPFCOMPAT_ARTIFACT_NAME:-}
  [[ "$name" =~ ^[A-Za-z0-9._-]*$ ]] ||
    die "artifact-name '$name' is not made of letters, digits, '.', '_' and '-'"
  local temp="${RUNNER_TEMP:-/tmp}/bpfcompat"
  mkdir -p "$temp"
  output bin-dir "$temp/bin"
  if [ "$mode" = publish ]; then
    resolve_publish "$name" "$temp"
    return
  fi
  if [ "$mode" = merge ]; then
    resolve_merge "$name" "$temp"
    return
  fi
  check_shard "$mode" "$name"
  local matrix hash id lock definition
  matrix=$(resolve_matrix "${BPFCOMPAT_MATRIX:?matrix is required}")
  lock=$(lock_file_of "$matrix")
  one_of locked "${BPFCOMPAT_LOCKED:-false}" true false
  if [ "${BPFCOMPAT_LOCKED:-false}" = true ] && [ ! -f "$lock" ]; then
    die "locked: true, but there is no lock file $lock; run \`bpfcompat kernels lock --matrix $matrix\` and commit it"
  fi
  # Empty: bpfcompat's default (load-attach), or a suite's own modes.
  one_of validation-mode "${BPFCOMPAT_VALIDATION_MODE:-load-attach}" \
    load-only load_only load-attach load_attach behavior
  if ! [[ "${BPFCOMPAT_COMMAND_EXPECT_EXIT:-0}" =~ ^[0-9]{1,3}$ ]] || [ "${BPFCOMPAT_COMMAND_EXPECT_EXIT:-0}" -gt 255 ]; then
    die "command-expect-exit '$BPFCOMPAT_COMMAND_EXPECT_EXIT' is not an exit code (0-255)"
  fi
  [[ "${BPFCOMPAT_CONCURRENCY:-}" =~ ^([1-9][0-9]*)?$ ]] ||
    die "concurrency '$BPFCOMPAT_CONCURRENCY' is not a positive number"
  if [ -n "${BPFCOMPAT_COMMAND_BINARY:-}" ]; then
    [ -n "${BPFCOMPAT_COMMAND:-}" ] || die "command-binary is given without command"
    [ -f "$BPFCOMPAT_COMMAND_BINARY" ] || die "command-binary '$BPFCOMPAT_COMMAND_BINARY' is not a file"
  fi
  if [ -n "${BPFCOMPAT_GUEST_TOOLS:-}" ]; then
    [ -n "${BPFCOMPAT_COMMAND:-}" ] || die "guest-tools is given without command"
    local tool
    while IFS= read -r tool; do
      [ -z "$tool" ] || [ -f "$tool" ] || die "guest-tools: '$tool' is not a file"
    done <<<"$BPFCOMPAT_GUEST_TOOLS"
  fi
  local artifacts=()
  [ -z "${BPFCOMPAT_ARTIFACT:-}" ] || resolve_artifacts "$BPFCOMPAT_ARTIFACT"
  if [ "$mode" = plan ]; then
    [[ "${BPFCOMPAT_JOBS:-}" =~ ^[1-9][0-9]*$ ]] ||
      die "mode: plan needs jobs, the number of shards (a positive number), not '${BPFCOMPAT_JOBS:-}'"
    [ -z "${BPFCOMPAT_TIMINGS:-}" ] || [ -f "$BPFCOMPAT_TIMINGS" ] ||
      echo "::notice::bpfcompat: timings '$BPFCOMPAT_TIMINGS' is not there (a first run?): shards get equal kernel counts"
    output plan "$temp/plan/shard-plan.json"
  else
    check_what_to_run
  fi
  check_outputs
  # The expanded glob, one NUL-terminated path each, for the test step.
  local list="$temp/artifacts"
  : >"$list"
  local a
  for a in "${artifacts[@]}"; do printf '%s\0' "$(realpath "$a")" >>"$list"; done
  # The cache follows the kernels: the matrix and, when there is one, the
  # lock file pinning its unpinned sources.
  definition=$matrix
  [ -f "$definition" ] || definition="$action_dir/matrices/$matrix.yaml"
  local pinned=("$definition")
  [ ! -f "$lock" ] || pinned+=("$lock")
  hash=$(cat "${pinned[@]}" | sha256sum | cut -c1-16)
  # Snapshots (docs/snapshots.md) are saved with the kernels; one restores
  # only on a machine like the one that saved it, so the cache key carries
  # the runner's CPU model and the bpfcompat version (its agent is in the
  # snapshot). bpfcompat checks the whole key anyway and replaces what
  # does not match.
  local machine
  machine=$({ grep -m1 '^model name' /proc/cpuinfo || echo unknown; printf '%s' "${BPFCOMPAT_VERSION:-}"; } |
    sha256sum | cut -c1-12)
  # One artifact per job: two jobs differing in check name, command,
  # artifact or matrix get different names, and so do reruns. A name given
  # (artifact-name, for a publishing workflow to find) is replaced by reruns.
  if [ -n "${BPFCOMPAT_SHARD:-}" ]; then
    name="$name-shard-${BPFCOMPAT_SHARD%/*}-of-${BPFCOMPAT_SHARD#*/}"
  elif [ "$mode" = plan ]; then
    name="${name:-bpfcompat}-plan"
  elif [ -z "$name" ]; then
    id=$(printf '%s\0' "$matrix" "$BPFCOMPAT_CHECK_NAME" "${BPFCOMPAT_COMMAND:-}" "${BPFCOMPAT_ARTIFACT:-}" "${BPFCOMPAT_SUITE:-}" | sha256sum | cut -c1-8)
    name="bpfcompat-${GITHUB_JOB:-job}-${BPFCOMPAT_CHECK_NAME}-${id}-${GITHUB_RUN_ATTEMPT:-1}"
    name=$(printf '%s' "$name" | tr -c 'A-Za-z0-9._-' '-')
  fi
  output matrix "$matrix"
  output lock-file "$lock"
  output matrix-hash "$hash"
  output machine-hash "$machine"
  output artifacts "$list"
  output artifact-name "$name"
  output report-dir "$temp/reports/$name"
  output cache-dir "$HOME/.cache/bpfcompat"
}

# mode: publish, in a workflow on: workflow_run. Nothing of the other run is
# run or trusted here: its artifact is downloaded into an empty directory of
# RUNNER_TEMP, and bpfcompat reads only its report.json, as a stranger's.
resolve_publish() {
  local name=$1 temp=$2
  [ "${GITHUB_EVENT_NAME:-}" = workflow_run ] ||
    die "mode: publish publishes another run's report, in a workflow on: workflow_run; this one runs on ${GITHUB_EVENT_NAME:-an unknown event} (docs/github-action.md, pull requests from forks)"
  [ -n "$name" ] ||
    die "mode: publish needs artifact-name: the name the other workflow's bpfcompat step (mode: test) uploaded its report as"
  local inputs input
  inputs=(command command-binary artifact suite manifest guest-tools out markdown)
  for input in "${inputs[@]}"; do
    local var="BPFCOMPAT_${input//-/_}"
    var=${var^^}
    [ "$input" != markdown ] || var=BPFCOMPAT_MARKDOWN_OUT
    [ -z "${!var:-}" ] || die "mode: publish runs nothing, so $input means nothing here; drop it"
  done
  local dir="$temp/published/$name"
  rm -rf "$dir"
  mkdir -p "$dir"
  output artifact-name "$name"
  output report-dir "$dir"
}

# shard and shard-plan: one part of a fan-out, run in mode test and
# published once by mode merge, which finds the parts by artifact-name.
check_shard() {
  local mode=$1 name=$2 shard=${BPFCOMPAT_SHARD:-} plan=${BPFCOMPAT_SHARD_PLAN:-}
  if [ -z "$shard" ]; then
    [ -z "$plan" ] || die "shard-plan is given without shard: give the shard (I/N) this job runs"
    return 0
  fi
  [[ "$shard" =~ ^[1-9][0-9]*/[1-9][0-9]*$ ]] && [ "${shard%/*}" -le "${shard#*/}" ] ||
    die "shard '$shard' is not I/N with 1 <= I <= N, such as 2/3"
  [ "$mode" = test ] ||
    die "shard is given with mode: $mode; a shard's report is one part of the matrix: run each shard with mode: test, then publish once with mode: merge"
  [ -n "$name" ] ||
    die "shard needs artifact-name: mode: merge finds the shards' reports by it (NAME-shard-I-of-N)"
  [ -z "$plan" ] || [ -f "$plan" ] || die "shard-plan '$plan' is not a file (the plan job's artifact, downloaded first?)"
}

# mode: merge, the last job of a fan-out: the shards' reports, uploaded
# by mode test as NAME-shard-I-of-N, are downloaded into an empty
# directory, merged and published once.
resolve_merge() {
  local name=$1 temp=$2
  [ -n "$name" ] ||
    die "mode: merge needs artifact-name: the one the shards (mode: test with shard) were given"
  [ -z "${BPFCOMPAT_SHARD:-}" ] || die "shard is given with mode: merge, which merges every shard"
  local dir="$temp/shards/$name"
  rm -rf "$dir"
  mkdir -p "$dir"
  output artifact-name "$name"
  output shards-dir "$dir"
  output report-dir "$temp/reports/$name"
}

# command, artifact (expanded into $artifacts by the caller), suite and
# manifest: one way to say what runs, and files where files are named.
check_what_to_run() {
  local suite=${BPFCOMPAT_SUITE:-} manifest=${BPFCOMPAT_MANIFEST:-}
  if [ -n "$suite" ]; then
    [ -z "${BPFCOMPAT_COMMAND:-}" ] || die "suite and command are given; a suite's cases are objects for the validator: give one of them"
    [ -z "${BPFCOMPAT_ARTIFACT:-}" ] || die "suite and artifact are given; the suite names its cases' artifacts: give one of them"
    [ -z "$manifest" ] || die "suite and manifest are given; the suite names each case's manifest: give one of them"
    [ -f "$suite" ] || die "suite '$suite' is not a file"
    return
  fi
  if [ -n "$manifest" ]; then
    [ -z "${BPFCOMPAT_COMMAND:-}" ] || die "manifest is given with command; a manifest describes an object for the validator: drop one of them"
    [ -f "$manifest" ] || die "manifest '$manifest' is not a file"
    [ ${#artifacts[@]} -eq 1 ] ||
      die "manifest describes one object, and artifact '${BPFCOMPAT_ARTIFACT:-}' matches ${#artifacts[@]} files; for several, put each one's manifest beside it as X.manifest.yaml, or use a suite"
  fi
  [ -n "${BPFCOMPAT_COMMAND:-}" ] || [ ${#artifacts[@]} -gt 0 ] ||
    die "give the command input (your loader), the artifact input (.bpf.o files) or the suite input"
}

# suite-out and suite-markdown (the Go bpfcompat's names for a suite's
# summary) are where out and markdown go with a suite: either name may be
# used, both only for the same path.
check_outputs() {
  check_suite_output out "${BPFCOMPAT_OUT:-}" "${BPFCOMPAT_SUITE_OUT:-}"
  check_suite_output markdown "${BPFCOMPAT_MARKDOWN_OUT:-}" "${BPFCOMPAT_SUITE_MARKDOWN:-}"
}

check_suite_output() {
  local name=$1 plain=$2 suite=$3
  [ -n "$suite" ] || return 0
  [ -n "${BPFCOMPAT_SUITE:-}" ] || die "suite-$name is given without suite; without a suite, use $name"
  [ -z "$plain" ] || [ "$plain" = "$suite" ] ||
    die "$name '$plain' and suite-$name '$suite' name different files; give one of them"
}

# The version input: empty (the release of action/RELEASE), source, latest,
# or a release such as 0.1.0.
check_version() {
  [[ "$1" =~ ^(|source|latest|v?[0-9]+\.[0-9]+\.[0-9]+([-.][0-9A-Za-z.]+)?)$ ]] ||
    die "version '$1' is not empty (this action's own release), source, latest or a release such as 0.1.0"
}

step_install_qemu() {
  if ! command -v qemu-system-x86_64 >/dev/null || ! command -v busybox >/dev/null; then
    sudo_ apt-get update -qq
    # busybox-static: the guest's userland for command mode.
    sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      qemu-system-x86 busybox-static
  fi
  qemu-system-x86_64 --version | head -n1
  # Hosted runners have /dev/kvm as root:kvm 0660; without access every
  # kernel boots under TCG, several times slower.
  if [ -e /dev/kvm ]; then
    echo 'KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"' |
      sudo_ tee /etc/udev/rules.d/99-bpfcompat-kvm.rules >/dev/null
    sudo_ udevadm control --reload-rules
    sudo_ udevadm trigger --name-match=kvm
    sleep 1
    if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then echo "KVM: enabled"; else echo "::warning::bpfcompat: /dev/kvm is not usable; kernels boot under TCG (slow)"; fi
  else
    echo "::notice::bpfcompat: no /dev/kvm on this runner; kernels boot under TCG (slow)"
  fi
}

step_install() {
  local bin_dir=${BPFCOMPAT_BIN_DIR:?}
  local version=${BPFCOMPAT_VERSION:-} installed expected
  check_version "$version"
  expected=$(release_value version)
  mkdir -p "$bin_dir"
  if [ "$version" = source ]; then
    # The action's own checkout: the host binary and the guest agent, which
    # the host looks for beside itself.
    bash "$action_dir/scripts/install-deps.sh"
    local target="${RUNNER_TEMP:-/tmp}/bpfcompat/target"
    cargo build --release --locked --manifest-path "$action_dir/Cargo.toml" \
      --target-dir "$target" -p bpfcompat
    install -m 0755 "$target/release/bpfcompat" "$target/release/bpfcompat-guest" "$bin_dir/"
    installed="built from source in $action_dir"
  else
    # By default the release this action's ref belongs to; the repository
    # is named here, not taken from github.action_repository, which is
    # empty inside composite actions.
    local repo base asset=bpfcompat-x86_64-linux.tar.gz
    repo=$(release_value repository)
    if [ "$version" = latest ]; then
      echo "::warning::bpfcompat: version: latest may install a binary newer than this action's scripts (release $expected); pin the action's ref instead"
      base="https://github.com/$repo/releases/latest/download"
      expected=
    else
      [ -z "$version" ] || expected=${version#v}
      base="https://github.com/$repo/releases/download/v$expected"
    fi
    # Tests point this at a local directory (file://...).
    base=${BPFCOMPAT_RELEASE_BASE_URL:-$base}
    echo "fetching $base/$asset"
    local tmp digest
    tmp=$(mktemp -d)
    curl -fsSL --retry 3 -o "$tmp/$asset" "$base/$asset" ||
      die "cannot download $base/$asset"
    curl -fsSL --retry 3 -o "$tmp/$asset.sha256" "$base/$asset.sha256" ||
      die "cannot download $base/$asset.sha256"
    # The published digest names the file; check it, then unpack.
    digest=$(cut -d' ' -f1 "$tmp/$asset.sha256")
    (cd "$tmp" && echo "$digest  $asset" | sha256sum --check --strict --quiet) ||
      die "$asset from $base does not match its published sha256"
    # The arm64 guests' agent too, in archives that have it.
    tar -xzf "$tmp/$asset" -C "$bin_dir" --wildcards bpfcompat 'bpfcompat-guest*'
    rm -rf "$tmp"
    installed="from $base/$asset, sha256 $digest"
  fi
  local said
  said=$("$bin_dir/bpfcompat" --version)
  if [ -n "$expected" ] && [ "$said" != "bpfcompat $expected" ]; then
    die "the installed binary says '$said', not 'bpfcompat $expected' (the release this action's scripts belong to)"
  fi
  echo "$bin_dir" >>"$GITHUB_PATH"
  echo "installed $said $installed"
}

# Expands the artifact glob into the files it names (at least one).
resolve_artifacts() {
  local pattern=$1
  shopt -s nullglob globstar
  # shellcheck disable=SC2206 # the glob is the point
  artifacts=($pattern)
  shopt -u nullglob globstar
  [ ${#artifacts[@]} -gt 0 ] || die "artifact '$pattern' matches no file"
}

step_test() {
  local report_dir=${BPFCOMPAT_REPORT_DIR:?}
  local report="$report_dir/report.json"
  mkdir -p "$report_dir"
  local args=(test --matrix "${BPFCOMPAT_MATRIX_FILE:?}" --out "$report"
    --markdown "$report_dir/report.md" --html "$report_dir/report.html"
    --cache-dir "${BPFCOMPAT_CACHE_DIR:?}" --workdir "${RUNNER_TEMP:-/tmp}/bpfcompat/work")
  # Unset ones leave bpfcompat's defaults, or a suite's.
  [ -z "${BPFCOMPAT_TIMEOUT:-}" ] || args+=(--timeout "$BPFCOMPAT_TIMEOUT")
  [ "${BPFCOMPAT_LOCKED:-false}" != true ] || args+=(--locked)
  [ -z "${BPFCOMPAT_CONCURRENCY:-}" ] || args+=(--concurrency "$BPFCOMPAT_CONCURRENCY")
  [ -z "${BPFCOMPAT_SHARD:-}" ] || args+=(--shard "$BPFCOMPAT_SHARD")
  [ -z "${BPFCOMPAT_SHARD_PLAN:-}" ] || args+=(--shard-plan "$(realpath "$BPFCOMPAT_SHARD_PLAN")")
  local artifacts=()
  mapfile -d '' -t artifacts <"${BPFCOMPAT_ARTIFACTS:?}"
  if [ -n "${BPFCOMPAT_COMMAND:-}" ]; then
    args+=(--command "$BPFCOMPAT_COMMAND" --command-expect-exit "${BPFCOMPAT_COMMAND_EXPECT_EXIT:-0}")
    [ -z "${BPFCOMPAT_COMMAND_BINARY:-}" ] || args+=(--command-binary "$BPFCOMPAT_COMMAND_BINARY")
    local tool
    while IFS= read -r tool; do
      [ -z "$tool" ] || args+=(--guest-tool "$tool")
    done <<<"${BPFCOMPAT_GUEST_TOOLS:-}"
  else
    [ -z "${BPFCOMPAT_VALIDATION_MODE:-}" ] || args+=(--validation-mode "$BPFCOMPAT_VALIDATION_MODE")
    [ -z "${BPFCOMPAT_SUITE:-}" ] || args+=(--suite "$BPFCOMPAT_SUITE")
    [ -z "${BPFCOMPAT_MANIFEST:-}" ] || args+=(--manifest "$BPFCOMPAT_MANIFEST")
  fi
  local a
  for a in "${artifacts[@]}"; do args+=(--artifact "$a"); done
  local code=0
  # In the workspace: a built-in matrix's lock file goes to .bpfcompat/ there.
  (cd "${GITHUB_WORKSPACE:-$PWD}" && bpfcompat "${args[@]}") || code=$?
  # 2 (a required kernel failed) and 1 with a report (one could not be
  # checked) are verdicts for the publish step to act on; no report is a
  # tool error that ends the action here.
  if [ ! -s "$report" ]; then
    die "bpfcompat test exited $code without writing a report"
  fi
  # The lock file pins what ran: uploaded with the report, and left in the
  # workspace for a later step to commit.
  local lock=${BPFCOMPAT_LOCK_FILE:?}
  if [ -f "$lock" ]; then
    cp "$lock" "$report_dir/"
    echo "lock file: $lock (commit it, then use locked: true)"
  fi
  # The resolve step has refused suite-out and out naming different files.
  copy_to "${BPFCOMPAT_SUITE_OUT:-${BPFCOMPAT_OUT:-}}" "$report"
  copy_to "${BPFCOMPAT_SUITE_MARKDOWN:-${BPFCOMPAT_MARKDOWN_OUT:-}}" "$report_dir/report.md"
  output report "$report"
  output exit-code "$code"
}

# mode: plan: shards of about equal time for the jobs input, by the times
# of the timings report when there is one; shards=[...] for strategy.matrix.
step_plan() {
  local plan=${BPFCOMPAT_PLAN:?}
  mkdir -p "$(dirname "$plan")"
  local args=(shards plan --matrix "${BPFCOMPAT_MATRIX_FILE:?}" --jobs "${BPFCOMPAT_JOBS:?}"
    --out "$plan" --github-output "$GITHUB_OUTPUT")
  [ -z "${BPFCOMPAT_TIMINGS:-}" ] || [ ! -f "$BPFCOMPAT_TIMINGS" ] || args+=(--timings "$(realpath "$BPFCOMPAT_TIMINGS")")
  (cd "${GITHUB_WORKSPACE:-$PWD}" && bpfcompat "${args[@]}")
}

# mode: merge: every shard's report.json, downloaded one directory each.
step_merge() {
  local dir=${BPFCOMPAT_SHARDS_DIR:?} report_dir=${BPFCOMPAT_REPORT_DIR:?}
  local reports=()
  shopt -s nullglob
  reports=("$dir"/*/report.json)
  shopt -u nullglob
  [ ${#reports[@]} -gt 0 ] ||
    die "no shard reports were downloaded for artifact-name '${BPFCOMPAT_ARTIFACT_NAME:-}' (NAME-shard-I-of-N)"
  mkdir -p "$report_dir"
  local report="$report_dir/report.json" code=0
  bpfcompat merge "${reports[@]}" --out "$report" --markdown "$report_dir/report.md" || code=$?
  [ -s "$report" ] || die "bpfcompat merge exited $code without writing a report"
  copy_to "${BPFCOMPAT_OUT:-}" "$report"
  copy_to "${BPFCOMPAT_MARKDOWN_OUT:-}" "$report_dir/report.md"
  output report "$report"
  output exit-code "$code"
}

# The out and markdown inputs: copies of the report where the user wants
# them (relative to the workspace).
copy_to() {
  [ -n "$1" ] || return 0
  local dest=$1
  case "$dest" in /*) ;; *) dest="${GITHUB_WORKSPACE:-$PWD}/$dest" ;; esac
  mkdir -p "$(dirname "$dest")"
  cp "$2" "$dest"
}

# report.html as an artifact of its own (uploaded unzipped, so the link
# opens it), for the run that publishes: rendered here from report.json,
# which in mode publish is another run's and read as a stranger's; the page
# that run uploaded is never passed on. A shard (mode test) has its page in
# its report artifact only.
step_page() {
  local mode=${BPFCOMPAT_MODE:-full} report=${BPFCOMPAT_REPORT:-}
  [ "$mode" != test ] || return 0
  local args=(report)
  if [ "$mode" = publish ]; then
    report="${BPFCOMPAT_REPORT_DIR:?}/report.json"
    args+=(--untrusted)
  fi
  [ -f "${report:?}" ] || die "no report.json at $report to render report.html from"
  # The artifact takes the file's name: the report artifact's, unique per job.
  local page="${RUNNER_TEMP:-/tmp}/bpfcompat/page/${BPFCOMPAT_ARTIFACT_NAME:?}.html"
  mkdir -p "$(dirname "$page")"
  args+=(--html "$page" --workdir "${RUNNER_TEMP:-/tmp}/bpfcompat/work" "$report")
  bpfcompat "${args[@]}"
  output html "$page"
}

step_publish() {
  local report=${BPFCOMPAT_REPORT:-} comment=${BPFCOMPAT_COMMENT:-true}
  local mode_args=()
  case "${BPFCOMPAT_MODE:-full}" in
    # The unprivileged half: the token only reads the base's results.
    test) mode_args=(--check-run false) comment=false ;;
    publish)
      report="${BPFCOMPAT_REPORT_DIR:?}/report.json"
      [ -f "$report" ] || die "the artifact '${BPFCOMPAT_ARTIFACT_NAME:-}' of the workflow run has no report.json"
      mode_args=(--workflow-run) ;;
  esac
  local args=(publish --report "${report:?}" "${mode_args[@]}"
    --check-name "${BPFCOMPAT_CHECK_NAME:-bpfcompat}"
    --comment "$comment"
    --fail-on "${BPFCOMPAT_FAIL_ON:-required}"
    --compare-base "${BPFCOMPAT_COMPARE_BASE:-true}")
  [ -z "${BPFCOMPAT_ARTIFACT_URL:-}" ] || args+=(--artifact-url "$BPFCOMPAT_ARTIFACT_URL")
  [ -z "${BPFCOMPAT_PAGE_URL:-}" ] || args+=(--page-url "$BPFCOMPAT_PAGE_URL")
  [ -z "${BPFCOMPAT_COMMENT_AUTHOR:-}" ] || args+=(--comment-author "$BPFCOMPAT_COMMENT_AUTHOR")
  # The token stays in GITHUB_TOKEN: not on a command line.
  bpfcompat "${args[@]}"
}

case "${1:-}" in
  check-runner) step_check_runner ;;
  resolve) step_resolve ;;
  install-qemu) step_install_qemu ;;
  install) step_install ;;
  test) step_test ;;
  plan) step_plan ;;
  merge) step_merge ;;
  page) step_page ;;
  publish) step_publish ;;
  *) die "usage: run.sh check-runner|resolve|install-qemu|install|test|plan|merge|page|publish" ;;
esac
