#!/bin/sh
# Compiles the test corpus: tests/bpf/*.bpf.c -> $OUT/*.bpf.o (default
# target/bpf-corpus). Needs clang and libbpf-dev's headers. Also writes
# not_elf.bpf.o and truncated.bpf.o, two objects every check must reject.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE/../../target/bpf-corpus}
CLANG=${CLANG:-clang}
MULTIARCH=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
mkdir -p "$OUT"
for src in "$HERE"/*.bpf.c; do
	obj="$OUT/$(basename "$src" .c).o"
	"$CLANG" -target bpf -O2 -g -D__TARGET_ARCH_x86 \
		-I"/usr/include/$MULTIARCH" -I"$HERE" -c "$src" -o "$obj"
done
printf 'this is not an ELF object\n' >"$OUT/not_elf.bpf.o"
head -c 600 "$OUT/tracepoint.bpf.o" >"$OUT/truncated.bpf.o"
