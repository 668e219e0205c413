#!/usr/bin/env bash
# Builds the tiny test kernel (scripts/fetch-test-kernels.sh) where it is
# reproduced byte for byte: in a Debian 12 container, whose gcc, binutils,
# pahole and xz are the ones its config names. For machines that are not
# Debian 12 (GitHub's Ubuntu runners); on Debian 12 run fetch-test-kernels.sh
# itself. Usage: scripts/build-tiny-kernel-in-debian.sh DIR (the kernels'
# folder; the other kernels there are left as they are). Needs docker.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:?usage: $0 DIR}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
# The container's own apt sources are Debian's: the fetch script falls back
# to them when no mirror is given.
docker run --rm \
  -e BPFCOMPAT_DEBIAN_MIRROR -e BPFCOMPAT_DEBIAN_SECURITY_MIRROR \
  -v "$root:/src:ro" -v "$dest:/kernels" \
  debian:bookworm bash -euo pipefail -c '
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends ca-certificates curl gcc make \
      flex bison bc libelf-dev libssl-dev dwarves xz-utils cpio >/dev/null
    bash /src/scripts/fetch-test-kernels.sh /kernels'
