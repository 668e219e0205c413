//! The result port: a serial line of its own (ttyS1), separate from the
//! console, put in raw mode so the host reads exactly the bytes we write.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::Duration;

use bpfcompat_proto::RESULT_PORT_FAILURE;

pub struct ResultPort {
    file: Option<File>,
}

impl ResultPort {
    /// Opens the device; failures are reported on the console (stderr), the
    /// only place left to report them, and later writes go nowhere.
    pub fn open(device: &str) -> Self {
        match open_raw(device) {
            Ok(file) => Self { file: Some(file) },
            Err(e) => {
                eprintln!("{RESULT_PORT_FAILURE}cannot open {device}: {e}");
                Self { file: None }
            }
        }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        if let Some(file) = &mut self.file {
            if let Err(e) = file.write_all(bytes) {
                eprintln!("{RESULT_PORT_FAILURE}writing failed: {e}");
            }
        }
    }

    /// Reads what has arrived, waiting at most `timeout` (for ever: `None`)
    /// for the first byte; `Ok(0)` when nothing came in time.
    pub fn read(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> std::io::Result<usize> {
        let Some(file) = &mut self.file else {
            return Err(std::io::Error::other("the result port could not be opened"));
        };
        let mut poll = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
        // SAFETY: one valid pollfd.
        match unsafe { libc::poll(&mut poll, 1, ms) } {
            0 => Ok(0),
            n if n < 0 => Err(std::io::Error::last_os_error()),
            _ => file.read(buf),
        }
    }

    /// Drops whatever arrived and was not read yet.
    pub fn discard_input(&mut self) {
        if let Some(file) = &self.file {
            // SAFETY: a valid open descriptor.
            unsafe { libc::tcflush(file.as_raw_fd(), libc::TCIFLUSH) };
        }
    }

    /// Waits until the UART has sent everything.
    pub fn finish(&mut self) {
        if let Some(file) = &mut self.file {
            let _ = file.flush();
            // SAFETY: a valid open descriptor.
            unsafe { libc::tcdrain(file.as_raw_fd()) };
        }
    }
}

fn open_raw(device: &str) -> std::io::Result<File> {
    let path = CString::new(device).expect("device path has no NUL");
    // O_NONBLOCK: a serial open can otherwise wait for carrier detect.
    // SAFETY: plain syscalls on a descriptor we own.
    unsafe {
        let fd = libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let file = File::from_raw_fd(fd);
        let mut tio: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut tio) == 0 {
            // Raw: no `\n` -> `\r\n`, no echo, 8 bits; CLOCAL ignores modem lines.
            libc::cfmakeraw(&mut tio);
            tio.c_cflag |= libc::CLOCAL;
            // 115200 baud, set as cfsetispeed/cfsetospeed do: the libc crate
            // binds those two to versioned glibc symbols, which a static
            // (crt-static) link of the release agent cannot resolve.
            tio.c_cflag = (tio.c_cflag & !libc::CBAUD) | libc::B115200;
            tio.c_ispeed = libc::B115200;
            tio.c_ospeed = libc::B115200;
            if libc::tcsetattr(fd, libc::TCSANOW, &tio) != 0 {
                eprintln!(
                    "bpfcompat-guest: cannot make {device} raw: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
        Ok(file)
    }
}
