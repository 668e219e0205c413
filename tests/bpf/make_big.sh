#!/bin/sh
# Writes OUT (a .bpf.o) whose read-only data is BYTES pseudo-random bytes
# from SEED: a real-sized object that deflates to no less than its data, for
# the job-channel test and bench. One tracepoint program reads the data.
# Usage: make_big.sh OUT BYTES [SEED]. BYTES must stay under 2 MiB (an array
# map's value, which .rodata becomes, is limited to that).
set -eu
OUT=$1
BYTES=$2
SEED=${3:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
CLANG=${CLANG:-clang}
MULTIARCH=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
src="$OUT.c"
{
	printf '#include "common.h"\nconst volatile unsigned char blob[%s] = {\n' "$BYTES"
	awk -v n="$BYTES" -v seed="$SEED" 'BEGIN {
		srand(seed)
		for (i = 0; i < n; i++) printf "%d,%s", int(rand() * 256), (i % 32 == 31) ? "\n" : ""
	}'
	printf '};\nSEC("tracepoint/syscalls/sys_enter_getpid")\n'
	printf 'int read_blob(void *ctx) { return blob[%s - 1]; }\n' "$BYTES"
	printf 'char LICENSE[] SEC("license") = "GPL";\n'
} >"$src"
"$CLANG" -target bpf -O2 -g -D__TARGET_ARCH_x86 \
	-I"/usr/include/$MULTIARCH" -I"$HERE" -c "$src" -o "$OUT"
rm -f "$src"
