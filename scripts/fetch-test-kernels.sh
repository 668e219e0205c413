#!/usr/bin/env bash
# Reproduces the test kernels (the folder tests read through
# BPFCOMPAT_TEST_KERNELS, ../shared/kernels beside a checkout) from Debian's
# public packages, byte for byte, each file checked by its sha256:
#
#   vmlinuz-*        boot/vmlinuz-* of the linux-image-* package named below
#   packages/*.deb   the packages themselves, unchanged
#   arm64/*.deb      Debian's arm64 cloud kernel packages, unchanged
#   vmlinuz-6.1.192-tiny-nobtf
#                    built here from Debian's linux-source-6.1 6.1.192-2 with
#                    scripts/kernel-configs/config-6.1.192-tiny-nobtf, by the
#                    compiler its config names (gcc 12.2.0-14+deb12u1, Debian 12);
#                    see build_tiny for how the original's timestamps are replayed
#
# Usage: scripts/fetch-test-kernels.sh [--no-build] [--print-mirrors] [DIR]
#   DIR              default: $BPFCOMPAT_TEST_KERNELS, else ../shared/kernels
#   --no-build       fetch the packages only; the tiny kernel, if missing, is
#                    said to be and left so (exit 0)
#   --print-mirrors  print the two archive base URLs this machine would use, and exit
#
# Idempotent and offline when the files are there: a file whose digest
# matches is left alone, and no mirror is asked for anything.
#
# Where the packages come from: BPFCOMPAT_DEBIAN_MIRROR, the base URL of a
# Debian archive mirror (the directory holding dists/ and pool/), else the
# first Debian source configured in this machine's apt sources. Packages of
# the security archive come from BPFCOMPAT_DEBIAN_SECURITY_MIRROR, else the
# apt source of a *-security suite, else the mirror's base with "-security"
# appended (the layout of Debian's own archive). Every download is checked
# against the digest below before it is used, so any mirror will do.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tiny_config="$root/scripts/kernel-configs/config-6.1.192-tiny-nobtf"

# archive  pool path                                     package sha256
# then what to keep: "keep FILE" (the package as it is) and/or
# "image MEMBER FILE SHA256" (one file of it).
packages() {
  cat <<'EOF'
security pool/updates/main/l/linux-signed-amd64/linux-image-5.10.0-46-cloud-amd64_5.10.262-1_amd64.deb 18d94781d1b3052e21967ac2262239e5f14fbf511d6c3e110629d7aa35340760 image ./boot/vmlinuz-5.10.0-46-cloud-amd64 vmlinuz-5.10.0-46-cloud-amd64 2e141d21dc8fa57e2ab27a7d3757c058d9405b5c27e86707497ce915cc615c1b
main pool/main/l/linux-signed-amd64/linux-image-6.1.0-47-cloud-amd64_6.1.170-3_amd64.deb 139e51253b0d93db1ba3eb87707f76f3c5a7d83a50a5e5aacbda010ad21bd73a image ./boot/vmlinuz-6.1.0-47-cloud-amd64 vmlinuz-6.1.0-47-cloud-amd64 039bbfec6cae08dea0e6763b31b3880e620bf351ff13d2f2966b1ebf99f0d375 keep packages/linux-image-6.1.0-47-cloud-amd64_6.1.170-3_amd64.deb
main pool/main/l/linux-signed-amd64/linux-image-6.12.107+deb13-cloud-amd64_6.12.107-1_amd64.deb 04434ff520f860423eafe4203d986a35682ce73c2f71baa39e988ca0da93ac91 image ./boot/vmlinuz-6.12.107+deb13-cloud-amd64 vmlinuz-6.12.107+deb13-cloud-amd64 d1bc2c60a78ae6979736d081bc3c90e45ace6baf414f767dff588e319d3492bd
main pool/main/l/linux-signed-amd64/linux-binary-7.2.13+deb14-cloud-amd64_7.2.13-1_amd64.deb 03e41f1c34c16583462f029e81944a85ebcdb78098c258dedfa1cfdd680a27f8 keep packages/linux-binary-7.2.13+deb14-cloud-amd64_7.2.13-1_amd64.deb
main pool/main/l/linux/linux-modules-7.2.13+deb14-cloud-amd64_7.2.13-1_amd64.deb 97d79546041e3fdfb44dccff180938894d1bf8eb298f091f88539c1b37080bef keep packages/linux-modules-7.2.13+deb14-cloud-amd64_7.2.13-1_amd64.deb
main pool/main/l/linux-signed-arm64/linux-image-5.10.0-32-cloud-arm64_5.10.223-1_arm64.deb 1b79a526115ffed1262a3bcb127e9596a6849ad4acc31aacbef93db0c9cf7352 keep arm64/linux-image-5.10.0-32-cloud-arm64_5.10.223-1_arm64.deb
main pool/main/l/linux-signed-arm64/linux-image-6.1.0-47-cloud-arm64_6.1.170-3_arm64.deb 7fb763389f2e6fbbcf37f6b12d6dcc7be35aa2a2980abb32f4497afb4b7362bd keep arm64/linux-image-6.1.0-47-cloud-arm64_6.1.170-3_arm64.deb
EOF
}
tiny_file=vmlinuz-6.1.192-tiny-nobtf
tiny_sha256=b8796455dc25bc3ab6a6610305d26b529b922890089dcde59005ea1b69ffec6f
tiny_source=pool/updates/main/l/linux/linux-source-6.1_6.1.192-2_all.deb
tiny_source_sha256=ae95fe63d4c553f8d0e6c86cb1ab566f3894a43743eb19ab585cd97d82f26514

die() {
  echo "fetch-test-kernels: $*" >&2
  exit 1
}

say() { echo "fetch-test-kernels: $*"; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Whether FILE under the destination is there with digest SHA256.
present() { [ -f "$dest/$1" ] && [ "$(sha256_of "$dest/$1")" = "$2" ]; }

# The URIs of apt's deb sources with their suites, one "URI SUITE" a line,
# in the order apt reads them (deb822 .sources files and one-line .list files).
apt_sources() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
      {
        types = ""; uris = ""; suites = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^Types:/) types = $i
          if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
          if ($i ~ /^Suites:/) { suites = $i; sub(/^Suites:[ \t]*/, "", suites) }
        }
        if (types !~ /(^|[ \t])deb([ \t]|$)/) next
        n = split(uris, u, /[ \t]+/); m = split(suites, s, /[ \t]+/)
        for (a = 1; a <= n; a++) for (b = 1; b <= m; b++) print u[a], s[b]
      }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # deb [options] URI SUITE COMPONENTS...
    sed -E -n 's/^deb[ \t]+(\[[^]]*\][ \t]+)?([^ \t]+)[ \t]+([^ \t]+).*/\2 \3/p' "$f"
  done
}

# A Debian suite (not Ubuntu's): its codename, or an alias.
debian_suite() {
  case "${1%%-*}" in
    buster | bullseye | bookworm | trixie | forky | duke | sid | stable | oldstable | testing | unstable) return 0 ;;
    *) return 1 ;;
  esac
}

# The URI of apt's first Debian source of the security archive ("security")
# or of the main one ("main"), if any.
apt_debian_uri() {
  local which=$1 uri suite
  while read -r uri suite; do
    debian_suite "$suite" || continue
    if [[ "$suite" == *-security ]]; then
      [ "$which" = security ] || continue
    else
      [ "$which" = main ] || continue
    fi
    echo "${uri%/}"
    return
  done < <(apt_sources)
}

main_mirror() {
  local mirror=${BPFCOMPAT_DEBIAN_MIRROR:-$(apt_debian_uri main)}
  [ -n "$mirror" ] ||
    die "no Debian mirror: set BPFCOMPAT_DEBIAN_MIRROR to the base URL of one (the directory holding dists/ and pool/); this machine's apt sources name none (the release workflow passes the repository variable BPFCOMPAT_DEBIAN_MIRROR)"
  echo "${mirror%/}"
}

security_mirror() {
  local mirror=${BPFCOMPAT_DEBIAN_SECURITY_MIRROR:-$(apt_debian_uri security)}
  [ -n "$mirror" ] || mirror="$(main_mirror)-security"
  echo "${mirror%/}"
}

# Downloads ARCHIVE's PATH into the work directory, checked against SHA256;
# prints the local file.
fetch() {
  local archive=$1 path=$2 sha256=$3 base
  case "$archive" in
    main) base=$(main_mirror) ;;
    security) base=$(security_mirror) ;;
  esac
  local file="$work/${path##*/}"
  if [ ! -f "$file" ] || [ "$(sha256_of "$file")" != "$sha256" ]; then
    say "downloading $base/$path" >&2
    curl -fsSL --retry 3 --connect-timeout 20 -o "$file" "$base/$path" ||
      die "cannot download $base/$path (is the mirror reachable? set BPFCOMPAT_DEBIAN_MIRROR)"
  fi
  local got
  got=$(sha256_of "$file")
  [ "$got" = "$sha256" ] || die "$base/$path has sha256 $got, not $sha256: not the package the tests were made with"
  echo "$file"
}

# Moves FILE to NAME under the destination once its digest is SHA256.
install_checked() {
  local file=$1 name=$2 sha256=$3 got
  got=$(sha256_of "$file")
  [ "$got" = "$sha256" ] || die "$name came out with sha256 $got, not $sha256"
  mkdir -p "$(dirname "$dest/$name")"
  mv -f "$file" "$dest/$name"
  chmod 0444 "$dest/$name"
  say "$name: fetched, sha256 $sha256"
}

# One line of packages(): skipped whole when everything it gives is present.
fetch_package() {
  local archive=$1 path=$2 sha256=$3
  shift 3
  local wanted=() rest=("$@")
  while [ ${#rest[@]} -gt 0 ]; do
    case "${rest[0]}" in
      keep) present "${rest[1]}" "$sha256" || wanted+=(keep "${rest[1]}")
        rest=("${rest[@]:2}") ;;
      image) present "${rest[2]}" "${rest[3]}" || wanted+=("${rest[@]:0:4}")
        rest=("${rest[@]:4}") ;;
      *) die "packages(): unknown action ${rest[0]}" ;;
    esac
  done
  if [ ${#wanted[@]} -eq 0 ]; then
    say "${path##*/}: present"
    return
  fi
  local deb
  deb=$(fetch "$archive" "$path" "$sha256")
  while [ ${#wanted[@]} -gt 0 ]; do
    case "${wanted[0]}" in
      keep) cp "$deb" "$work/kept" && install_checked "$work/kept" "${wanted[1]}" "$sha256"
        wanted=("${wanted[@]:2}") ;;
      image)
        dpkg-deb --fsys-tarfile "$deb" | tar -xO "${wanted[1]}" >"$work/image" ||
          die "${path##*/} has no ${wanted[1]}"
        install_checked "$work/image" "${wanted[2]}" "${wanted[3]}"
        wanted=("${wanted[@]:4}") ;;
    esac
  done
}

# The tiny kernel, built from source. The original was built on Debian 12
# without reproducible-build settings, so two timestamps are in it: the
# build's date in its version string ("#1 Sat Nov 21 19:31:55 UTC 2026") and
# the mtime of the directories of its built-in initramfs (19:28:25, when that
# was made). Both are replayed: the initramfs is built first with
# KBUILD_BUILD_TIMESTAMP at that mtime, then the kernel with a `date` that
# answers the version string's date; KBUILD_BUILD_VERSION and
# KBUILD_BUILD_TIMESTAMP stay unset for it, as they were (init/version.o has
# an empty version then, as the original's has). Byte for byte needs the
# compiler, assembler, pahole and xz of Debian 12, as the config says.
build_tiny() {
  local want compiler
  want=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\(.*\)"$/\1/p' "$tiny_config")
  compiler=$(gcc --version 2>/dev/null | head -n1 || true)
  if [ "$compiler" != "$want" ]; then
    say "WARNING: $tiny_file is built with '$compiler', not '$want' as the original: expect another digest (build it on Debian 12, e.g. in a debian:bookworm container, to reproduce it)" >&2
  fi
  local deb
  deb=$(fetch security "$tiny_source" "$tiny_source_sha256")
  say "building $tiny_file from ${tiny_source##*/} (several minutes)"
  local src="$work/tiny"
  mkdir -p "$src" "$work/bin"
  dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/src/linux-source-6.1.tar.xz | tar -xJ -C "$src"
  src="$src/linux-source-6.1"
  cp "$tiny_config" "$src/.config"
  printf '#!/bin/sh\n[ $# -eq 0 ] && { echo "Sat Nov 21 19:31:55 UTC 2026"; exit 0; }\nexec /bin/date "$@"\n' >"$work/bin/date"
  chmod +x "$work/bin/date"
  local jobs log="$work/tiny-build.log"
  jobs=$(nproc 2>/dev/null || echo 2)
  if ! (
    cd "$src"
    export LC_ALL=C KBUILD_BUILD_USER=root KBUILD_BUILD_HOST=vm
    unset KBUILD_BUILD_VERSION KBUILD_BUILD_TIMESTAMP SOURCE_DATE_EPOCH
    make olddefconfig
    cmp -s .config "$tiny_config" || { echo "olddefconfig changed the config (missing tools? pahole, flex, bison, bc)"; diff "$tiny_config" .config; exit 1; }
    KBUILD_BUILD_TIMESTAMP=@1795289305 make -j"$jobs" usr/
    PATH="$work/bin:$PATH" make -j"$jobs" bzImage
  ) >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "building $tiny_file failed (log above; it needs gcc, make, flex, bison, bc, libelf-dev, libssl-dev, pahole)"
  fi
  local got
  got=$(sha256_of "$src/arch/x86/boot/bzImage")
  if [ "$got" = "$tiny_sha256" ]; then
    cp "$src/arch/x86/boot/bzImage" "$work/tiny-image"
    install_checked "$work/tiny-image" "$tiny_file" "$tiny_sha256"
    say "$tiny_file: reproduced byte for byte"
  else
    # Not under the original's name: tests pin its digest, and a kernel
    # that differs must not pass for it.
    cp "$src/arch/x86/boot/bzImage" "$dest/$tiny_file.rebuilt"
    say "$tiny_file: NOT reproduced byte for byte: built sha256 $got, the original's is $tiny_sha256 (compiler: $compiler). Kept as $dest/$tiny_file.rebuilt; tests that boot $tiny_file cannot run with it" >&2
    return 1
  fi
}

build=true
dest=
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=false ;;
    --print-mirrors)
      main=$(main_mirror)
      security=$(security_mirror)
      printf 'main %s\nsecurity %s\n' "$main" "$security"
      exit 0 ;;
    -*) die "unknown option $1 (usage: $0 [--no-build] [--print-mirrors] [DIR])" ;;
    *) dest=$1 ;;
  esac
  shift
done
dest=${dest:-${BPFCOMPAT_TEST_KERNELS:-$root/../shared/kernels}}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

while read -r line <&3; do
  # shellcheck disable=SC2086 # the fields of one line
  fetch_package $line
done 3< <(packages)

status=0
if present "$tiny_file" "$tiny_sha256"; then
  say "$tiny_file: present"
elif [ "$build" = true ]; then
  build_tiny || status=1
else
  say "$tiny_file: missing, not built (--no-build)"
  exit 0
fi
[ "$status" -eq 0 ] && say "every test kernel is in $dest, checked"
exit "$status"
