//! What goes into the guest: the initramfs the kernel unpacks.

pub mod cpio;
pub mod elf;
