#!/bin/sh
# Ground truth on a real kernel: boots KERNEL under QEMU/TCG with an
# initramfs whose /init is a static harness (default: the objcheck example)
# and /corpus holds the compiled test objects; prints the console.
#   tests/bpf/boot.sh KERNEL [HARNESS] [CORPUS_DIR] > console.log
# Build the harness first:
#   RUSTFLAGS="-C target-feature=+crt-static" cargo build --release \
#     --target x86_64-unknown-linux-gnu -p bpfcompat-guest --example objcheck
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$HERE/../..
KERNEL=$1
HARNESS=${2:-$ROOT/target/x86_64-unknown-linux-gnu/release/examples/objcheck}
CORPUS=${3:-$ROOT/target/bpf-corpus}
STAGE=$(mktemp -d)
chmod 755 "$STAGE" # the initramfs root: readable by non-root checks too
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/corpus" "$STAGE/dev" "$STAGE/proc" "$STAGE/sys"
cp "$HARNESS" "$STAGE/init"
cp "$CORPUS"/*.bpf.o "$STAGE/corpus/"
mknod -m 600 "$STAGE/dev/console" c 5 1 2>/dev/null || true
(cd "$STAGE" && find . | cpio -o -H newc --quiet) >"$STAGE.cpio"
timeout "${BOOT_TIMEOUT:-600}" qemu-system-x86_64 -accel tcg -cpu max -m "${BOOT_MEM:-512}" -smp 1 \
	-nodefaults -no-reboot -display none -kernel "$KERNEL" -initrd "$STAGE.cpio" \
	-append "console=ttyS0 panic=-1 quiet ${BOOT_APPEND:-}" -serial stdio </dev/null || echo "QEMU exit $?"
rm -f "$STAGE.cpio"
