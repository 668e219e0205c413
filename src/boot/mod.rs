//! Booting one kernel: the initramfs we generate for it, QEMU running it
//! under a supervised timeout with the console and the result channel, and
//! the snapshots a kernel is restored from instead of booted.

pub mod initramfs;
pub mod qemu;
pub mod snapshot;
