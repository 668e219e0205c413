//! Booting one kernel: the initramfs we generate for it, and QEMU running it
//! under a supervised timeout with the console and the result channel.

pub mod initramfs;
pub mod qemu;
