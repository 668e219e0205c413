#!/bin/sh
# Compiles the test corpus: tests/bpf/*.bpf.c -> $OUT/*.bpf.o (default
# target/bpf-corpus), built for x86 (__TARGET_ARCH_x86), and the same for
# arm64 (__TARGET_ARCH_arm64) in $OUT/arm64/, with $OUT/x86 -> . so that
# $OUT/{arch}/NAME.bpf.o names either build. Needs clang and libbpf-dev's
# headers, and for arm64 the arm64 kernel headers of
# linux-libc-dev-arm64-cross (scripts/install-deps.sh installs both). Also
# writes not_elf.bpf.o and truncated.bpf.o, two objects every check must
# reject.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE/../../target/bpf-corpus}
CLANG=${CLANG:-clang}
MULTIARCH=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
ARM64_INCLUDE=/usr/aarch64-linux-gnu/include
mkdir -p "$OUT/arm64"
# clang leaves NAME-XXXX.o.tmp behind when it is killed mid-write.
rm -f "$OUT"/*.tmp "$OUT"/arm64/*.tmp
ln -sfn . "$OUT/x86"
for src in "$HERE"/*.bpf.c; do
	name=$(basename "$src" .c).o
	"$CLANG" -target bpf -O2 -g -D__TARGET_ARCH_x86 \
		-I"/usr/include/$MULTIARCH" -I"$HERE" -c "$src" -o "$OUT/$name"
	"$CLANG" -target bpf -O2 -g -D__TARGET_ARCH_arm64 \
		-I"$ARM64_INCLUDE" -I"$HERE" -c "$src" -o "$OUT/arm64/$name"
done
printf 'this is not an ELF object\n' >"$OUT/not_elf.bpf.o"
head -c 600 "$OUT/tracepoint.bpf.o" >"$OUT/truncated.bpf.o"
