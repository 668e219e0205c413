//! The guest console (ttyS0): kept as a bounded log and watched for panics.
//!
//! A guest can print without limit (a loader in a loop, a kernel spewing
//! warnings), so the file keeps the head and the in-memory tail keeps the
//! end; the tail is what a user needs when a kernel dies.

use std::collections::VecDeque;
use std::io::Write;

/// Bytes of the console kept at the start of the log file.
const HEAD_BYTES: usize = 1 << 20;
/// Bytes of the console kept from the end, in memory and appended to the file.
const TAIL_BYTES: usize = 64 << 10;

/// Console lines that mean the kernel died or is about to.
const PANIC_MARKERS: &[&str] = &[
    "Kernel panic - not syncing",
    "Oops:",
    "BUG: unable to handle",
    "BUG: kernel NULL pointer",
    "general protection fault",
    "traps: PANIC: double fault",
];

/// Console lines that mean the guest ran out of memory: the OOM killer, or
/// an initramfs that did not fit.
const OOM_MARKERS: &[&str] = &["Out of memory", "oom-kill:", "Initramfs unpacking failed"];

/// What a finished console said.
pub struct Console {
    /// The first line that says the kernel died.
    pub panic_line: Option<String>,
    /// The first line that says the guest ran out of memory.
    pub oom_line: Option<String>,
    /// The last lines.
    pub tail: String,
}

pub struct ConsoleLog {
    file: std::fs::File,
    written: usize,
    dropped: usize,
    tail: VecDeque<u8>,
    line: Vec<u8>,
    panic_line: Option<String>,
    oom_line: Option<String>,
}

impl ConsoleLog {
    pub fn new(file: std::fs::File) -> Self {
        ConsoleLog {
            file,
            written: 0,
            dropped: 0,
            tail: VecDeque::with_capacity(TAIL_BYTES),
            line: Vec::new(),
            panic_line: None,
            oom_line: None,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let room = HEAD_BYTES.saturating_sub(self.written).min(bytes.len());
        self.file.write_all(&bytes[..room])?;
        self.written += room;
        self.dropped += bytes.len() - room;
        for &b in bytes {
            if self.tail.len() == TAIL_BYTES {
                self.tail.pop_front();
            }
            self.tail.push_back(b);
            if b == b'\n' {
                self.scan_line();
            } else if self.line.len() < 4096 {
                self.line.push(b);
            }
        }
        Ok(())
    }

    fn scan_line(&mut self) {
        let line = String::from_utf8_lossy(&self.line);
        for (markers, found) in [
            (PANIC_MARKERS, &mut self.panic_line),
            (OOM_MARKERS, &mut self.oom_line),
        ] {
            if found.is_none() && markers.iter().any(|m| line.contains(m)) {
                *found = Some(line.trim().to_owned());
            }
        }
        self.line.clear();
    }

    /// Flushes the file (appending the tail if the head overflowed) and
    /// returns what it said, with the last `lines` lines.
    pub fn finish(mut self, lines: usize) -> std::io::Result<Console> {
        if !self.line.is_empty() {
            self.scan_line();
        }
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        if self.dropped > 0 {
            let skipped = self.dropped.saturating_sub(tail.len());
            writeln!(
                self.file,
                "\n[bpfcompat: {skipped} console bytes not kept; the last {} follow]",
                tail.len().min(self.dropped)
            )?;
            self.file
                .write_all(&tail[tail.len() - tail.len().min(self.dropped)..])?;
        }
        self.file.flush()?;
        let text = String::from_utf8_lossy(&tail).replace('\r', "");
        let all: Vec<&str> = text.lines().collect();
        let tail_text = all[all.len().saturating_sub(lines)..].join("\n");
        Ok(Console {
            panic_line: self.panic_line,
            oom_line: self.oom_line,
            tail: tail_text,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_the_file_and_finds_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        let mut log = ConsoleLog::new(std::fs::File::create(&path).unwrap());
        let noise = vec![b'x'; 1000];
        for _ in 0..2000 {
            log.push(&noise).unwrap();
            log.push(b"\r\n").unwrap();
        }
        log.push(b"[ 0.9] Out of memory: Killed process 7 (loader)\r\n")
            .unwrap();
        log.push(b"[ 1.0] Kernel panic - not syncing: sysrq triggered crash\r\nend")
            .unwrap();
        let console = log.finish(2).unwrap();
        assert_eq!(
            console.panic_line.as_deref(),
            Some("[ 1.0] Kernel panic - not syncing: sysrq triggered crash")
        );
        assert_eq!(
            console.oom_line.as_deref(),
            Some("[ 0.9] Out of memory: Killed process 7 (loader)")
        );
        let tail = console.tail;
        assert!(tail.ends_with("crash\nend"), "{tail}");
        let size = std::fs::metadata(&path).unwrap().len() as usize;
        assert!(size <= HEAD_BYTES + TAIL_BYTES + 200, "{size}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("console bytes not kept"));
        assert!(text.ends_with("crash\r\nend"));
    }
}
