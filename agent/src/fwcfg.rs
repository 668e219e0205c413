//! Reading a file from QEMU's fw_cfg device, from PID 1 without any kernel
//! driver: its selector and data registers (x86's I/O ports, or the arm64
//! virt machine's MMIO window through `/dev/mem`), and the DMA interface for
//! the file itself, so a job of megabytes arrives at memory speed (the
//! serial port carries about 110 KB/s into a TCG guest).
//!
//! The DMA interface takes guest-physical addresses: the buffer is locked
//! in memory and each of its pages is looked up in `/proc/self/pagemap`.

/// Reads the fw_cfg file `name`, which must be `len` bytes long.
pub fn read_file(name: &str, len: u64) -> Result<Vec<u8>, String> {
    imp::read_file(name, len)
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod imp {
    pub fn read_file(_: &str, _: u64) -> Result<Vec<u8>, String> {
        Err("this architecture's fw_cfg is not read yet".to_owned())
    }
}

/// The registers: x86's I/O ports.
#[cfg(target_arch = "x86_64")]
mod device {
    use std::arch::asm;

    const PORT_SELECTOR: u16 = 0x510;
    const PORT_DATA: u16 = 0x511;
    const PORT_DMA_HIGH: u16 = 0x514;
    const PORT_DMA_LOW: u16 = 0x518;

    pub struct Device;

    impl Device {
        pub fn open() -> Result<Device, String> {
            // SAFETY: asks the kernel for access to fw_cfg's ports only.
            if unsafe { libc::ioperm(u64::from(PORT_SELECTOR), 12, 1) } != 0 {
                return Err(format!(
                    "no access to its I/O ports: {}",
                    std::io::Error::last_os_error()
                ));
            }
            Ok(Device)
        }

        pub fn select(&self, key: u16) {
            // SAFETY: ioperm granted the port; the selector takes a 16-bit key.
            unsafe {
                asm!("out dx, ax", in("dx") PORT_SELECTOR, in("ax") key, options(nomem, nostack))
            };
        }

        pub fn read_data(&self, out: &mut [u8]) {
            for byte in out {
                // SAFETY: ioperm granted the port; reading it has no other effect.
                unsafe {
                    asm!("in al, dx", out("al") *byte, in("dx") PORT_DATA, options(nomem, nostack))
                };
            }
        }

        /// Starts a DMA transfer whose control structure is at `address`.
        pub fn start_dma(&self, address: u64) {
            // SAFETY: the device reads the control structure and writes the
            // page it names, both the caller's; the low half starts it.
            unsafe {
                asm!("out dx, eax", in("dx") PORT_DMA_HIGH, in("eax") ((address >> 32) as u32).to_be(), options(nostack));
                asm!("out dx, eax", in("dx") PORT_DMA_LOW, in("eax") (address as u32).to_be(), options(nostack));
            }
        }
    }
}

/// The registers: the virt machine's MMIO window (data at +0, the selector
/// at +8, DMA at +16, all big-endian), mapped from `/dev/mem`.
#[cfg(target_arch = "aarch64")]
mod device {
    /// Where QEMU's virt machine puts fw_cfg (hw/arm/virt.c, VIRT_FW_CFG).
    const BASE: i64 = 0x0902_0000;
    const LEN: usize = 0x18;

    pub struct Device {
        regs: *mut u8,
    }

    impl Device {
        pub fn open() -> Result<Device, String> {
            let mem = std::ffi::CString::new("/dev/mem").expect("no NUL");
            // SAFETY: a plain open of a device node.
            let fd = unsafe { libc::open(mem.as_ptr(), libc::O_RDWR | libc::O_SYNC) };
            if fd < 0 {
                return Err(format!(
                    "cannot open /dev/mem: {}",
                    std::io::Error::last_os_error()
                ));
            }
            // SAFETY: maps the device's registers only; the fd is closed
            // after (the mapping stays).
            let regs = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    LEN,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd,
                    BASE,
                )
            };
            // SAFETY: the fd opened above.
            unsafe { libc::close(fd) };
            if regs == libc::MAP_FAILED {
                return Err(format!(
                    "cannot map its registers from /dev/mem: {}",
                    std::io::Error::last_os_error()
                ));
            }
            Ok(Device { regs: regs.cast() })
        }

        pub fn select(&self, key: u16) {
            // SAFETY: the selector register of the mapping.
            unsafe { self.regs.add(8).cast::<u16>().write_volatile(key.to_be()) };
        }

        pub fn read_data(&self, out: &mut [u8]) {
            for byte in out {
                // SAFETY: the data register; each read yields the next byte.
                *byte = unsafe { self.regs.read_volatile() };
            }
        }

        /// Starts a DMA transfer whose control structure is at `address`.
        pub fn start_dma(&self, address: u64) {
            std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
            // SAFETY: the DMA address register; the low half starts it.
            unsafe {
                let dma = self.regs.add(16).cast::<u32>();
                dma.write_volatile(((address >> 32) as u32).to_be());
                dma.add(1).write_volatile((address as u32).to_be());
            }
        }
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod imp {
    use std::io::{Read, Seek, SeekFrom};

    use super::device::Device;

    const KEY_SIGNATURE: u16 = 0x0000;
    const KEY_ID: u16 = 0x0001;
    const KEY_FILE_DIR: u16 = 0x0019;
    const ID_DMA: u32 = 1 << 1;
    const DMA_ERROR: u32 = 0x01;
    const DMA_READ: u32 = 0x02;
    const DMA_SELECT: u32 = 0x08;
    const PAGE: usize = 4096;

    pub fn read_file(name: &str, len: u64) -> Result<Vec<u8>, String> {
        // SAFETY: sysconf has no preconditions.
        if unsafe { libc::sysconf(libc::_SC_PAGESIZE) } != PAGE as libc::c_long {
            return Err("pages are not 4 KiB here".to_owned());
        }
        let device = Device::open()?;
        let mut signature = [0u8; 4];
        read_item(&device, KEY_SIGNATURE, &mut signature);
        if &signature != b"QEMU" {
            return Err("no fw_cfg device".to_owned());
        }
        let mut id = [0u8; 4];
        read_item(&device, KEY_ID, &mut id);
        if u32::from_le_bytes(id) & ID_DMA == 0 {
            return Err("the fw_cfg device has no DMA interface".to_owned());
        }
        let (key, size) = find(&device, name)?;
        if u64::from(size) != len {
            return Err(format!("{name} is {size} bytes, not the {len} announced"));
        }
        dma_read(&device, key, size as usize)
    }

    /// The selector and size of the file `name` in fw_cfg's directory.
    fn find(device: &Device, name: &str) -> Result<(u16, u32), String> {
        device.select(KEY_FILE_DIR);
        let mut count = [0u8; 4];
        device.read_data(&mut count);
        for _ in 0..u32::from_be_bytes(count) {
            // struct FWCfgFile { be32 size; be16 select; u16; char name[56] }
            let mut entry = [0u8; 64];
            device.read_data(&mut entry);
            let end = entry[8..].iter().position(|&b| b == 0).unwrap_or(56);
            if &entry[8..8 + end] == name.as_bytes() {
                let size = u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]);
                return Ok((u16::from_be_bytes([entry[4], entry[5]]), size));
            }
        }
        Err(format!("no file {name} in fw_cfg"))
    }

    fn read_item(device: &Device, key: u16, out: &mut [u8]) {
        device.select(key);
        device.read_data(out);
    }

    /// `len` bytes of the item `key`, by DMA straight into the returned
    /// buffer (pinned meanwhile), one transfer per physically contiguous
    /// run of its pages; the control structure has a locked page of its own.
    fn dma_read(device: &Device, key: u16, len: usize) -> Result<Vec<u8>, String> {
        let mut data = vec![0u8; len];
        if len == 0 {
            return Ok(data);
        }
        let control = Locked::new()?;
        let control_at = physical_runs(control.ptr, PAGE)?[0].0;
        let pinned = Pinned::new(&mut data)?;
        let runs = physical_runs(pinned.ptr, pinned.len)?;
        let words = control.ptr.cast::<u32>();
        for (n, (address, chunk)) in runs.into_iter().enumerate() {
            let mut op = DMA_READ;
            if n == 0 {
                op |= DMA_SELECT | (u32::from(key) << 16);
            }
            // SAFETY: the control structure is the locked page, which lives
            // until the end of this function.
            unsafe {
                words.write_volatile(op.to_be());
                words.add(1).write_volatile(chunk.to_be());
                words.add(2).cast::<u64>().write_volatile(address.to_be());
            }
            std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
            device.start_dma(control_at);
            // SAFETY: as above; QEMU clears the control word when done.
            let status = unsafe { u32::from_be(words.read_volatile()) };
            if status != 0 {
                let what = if status & DMA_ERROR != 0 {
                    "failed"
                } else {
                    "did not finish"
                };
                return Err(format!("DMA of run {n} {what} (control {status:#x})"));
            }
        }
        drop(pinned);
        Ok(data)
    }

    /// The physical ranges (address, length) that hold the `len` bytes at
    /// `ptr`, which must stay resident: each page looked up in
    /// `/proc/self/pagemap`, neighbours in physical memory merged.
    fn physical_runs(ptr: *const u8, len: usize) -> Result<Vec<(u64, u32)>, String> {
        let (start, end) = (ptr as usize, ptr as usize + len);
        let first = start / PAGE;
        let pages = (end - 1) / PAGE - first + 1;
        let mut map = std::fs::File::open("/proc/self/pagemap")
            .map_err(|e| format!("cannot open /proc/self/pagemap: {e}"))?;
        let mut entries = vec![0u8; pages * 8];
        map.seek(SeekFrom::Start(first as u64 * 8))
            .and_then(|_| map.read_exact(&mut entries))
            .map_err(|e| format!("cannot read /proc/self/pagemap: {e}"))?;
        let mut runs: Vec<(u64, u32)> = Vec::new();
        for (n, entry) in entries.chunks_exact(8).enumerate() {
            let entry = u64::from_le_bytes(entry.try_into().expect("8 bytes"));
            let pfn = entry & ((1 << 55) - 1);
            if entry >> 63 == 0 || pfn == 0 {
                return Err("a DMA page has no physical address".to_owned());
            }
            let page = (first + n) * PAGE;
            let (from, to) = (start.max(page), end.min(page + PAGE));
            let address = pfn * PAGE as u64 + (from - page) as u64;
            let chunk = (to - from) as u32;
            match runs.last_mut() {
                Some((at, n)) if *at + u64::from(*n) == address => *n += chunk,
                _ => runs.push((address, chunk)),
            }
        }
        Ok(runs)
    }

    /// A locked page of anonymous memory, so its physical address stays put.
    struct Locked {
        ptr: *mut u8,
    }

    impl Locked {
        fn new() -> Result<Locked, String> {
            // SAFETY: a fresh anonymous mapping, populated and locked.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    PAGE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE | libc::MAP_LOCKED,
                    -1,
                    0,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(format!(
                    "cannot lock a page for DMA: {}",
                    std::io::Error::last_os_error()
                ));
            }
            Ok(Locked { ptr: ptr.cast() })
        }
    }

    impl Drop for Locked {
        fn drop(&mut self) {
            // SAFETY: the mapping made in `new`, unmapped once.
            unsafe { libc::munmap(self.ptr.cast(), PAGE) };
        }
    }

    /// A buffer held in RAM (mlock) while DMA writes into it.
    struct Pinned {
        ptr: *mut u8,
        len: usize,
    }

    impl Pinned {
        fn new(buffer: &mut [u8]) -> Result<Pinned, String> {
            let (ptr, len) = (buffer.as_mut_ptr(), buffer.len());
            // SAFETY: locks the caller's live buffer, which outlives this.
            if unsafe { libc::mlock(ptr.cast(), len) } != 0 {
                return Err(format!(
                    "cannot lock {len} bytes for DMA: {}",
                    std::io::Error::last_os_error()
                ));
            }
            Ok(Pinned { ptr, len })
        }
    }

    impl Drop for Pinned {
        fn drop(&mut self) {
            // SAFETY: the range locked in `new`.
            unsafe { libc::munlock(self.ptr.cast(), self.len) };
        }
    }
}
