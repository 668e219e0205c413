//! libbpf's output, captured through `libbpf_set_print` at debug level.
//!
//! libbpf prints through one process-wide callback, so the capture is a
//! global buffer: [`Capture::start`] clears it and [`Capture::take`] returns
//! what libbpf said since. Checks run one at a time.

use std::ffi::{c_char, c_int};
use std::sync::Mutex;

use libbpf_rs::PrintLevel;

static BUFFER: Mutex<Vec<(PrintLevel, String)>> = Mutex::new(Vec::new());

/// libbpf's print callback: ours, not `libbpf_rs::set_print`'s, which
/// panics on a message that is not UTF-8, and a panic cannot leave an
/// `extern "C"` function: the agent would abort. libbpf quotes names from
/// the object, and verifier logs quote its source lines and BTF, all of
/// which may be any bytes: they are kept, invalid UTF-8 replaced.
unsafe extern "C" fn on_print(
    level: libbpf_sys::libbpf_print_level,
    format: *const c_char,
    args: *mut libbpf_sys::__va_list_tag,
) -> c_int {
    // SAFETY: libbpf passes its format string and the arguments for it;
    // vsprintf copies the va_list before each use.
    if let Ok(bytes) = unsafe { vsprintf::vsprintf_raw(format, args) } {
        if let Ok(mut b) = BUFFER.lock() {
            b.push((level.into(), String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    0
}

/// What libbpf printed during one step.
#[derive(Debug, Default, Clone)]
pub struct Output {
    pub entries: Vec<(PrintLevel, String)>,
}

pub struct Capture;

impl Capture {
    /// Installs the callback (idempotent) and clears the buffer.
    pub fn start() -> Capture {
        // SAFETY: `on_print` has the signature libbpf calls.
        unsafe { libbpf_sys::libbpf_set_print(Some(on_print)) };
        if let Ok(mut b) = BUFFER.lock() {
            b.clear();
        }
        Capture
    }

    pub fn take(&self) -> Output {
        let entries = BUFFER
            .lock()
            .map(|mut b| std::mem::take(&mut *b))
            .unwrap_or_default();
        Output { entries }
    }
}

const BEGIN: &str = "-- BEGIN PROG LOAD LOG --\n";
const END: &str = "-- END PROG LOAD LOG --";

impl Output {
    /// The last verifier log libbpf printed for program `prog`.
    pub fn verifier_log(&self, prog: &str) -> Option<String> {
        let marker = format!("prog '{prog}': {BEGIN}");
        self.entries.iter().rev().find_map(|(_, e)| {
            let start = e.rfind(&marker)? + marker.len();
            let rest = &e[start..];
            let end = rest.rfind(END).unwrap_or(rest.len());
            Some(rest[..end].to_owned())
        })
    }

    /// Warning-level lines, verifier logs left out, `libbpf: ` prefix removed.
    pub fn warn_lines(&self) -> Vec<String> {
        self.lines(|l| l == PrintLevel::Warn)
    }

    fn lines(&self, keep: impl Fn(PrintLevel) -> bool) -> Vec<String> {
        let mut out = Vec::new();
        for (level, e) in &self.entries {
            if !keep(*level) {
                continue;
            }
            for line in strip_logs(e).lines() {
                let line = line.trim_end();
                let line = line.strip_prefix("libbpf: ").unwrap_or(line);
                if !line.is_empty() {
                    out.push(line.to_owned());
                }
            }
        }
        out
    }

    /// Everything libbpf said, with each verifier log replaced by its size.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (_, e) in &self.entries {
            out.push_str(&strip_logs(e));
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
        out
    }
}

fn strip_logs(e: &str) -> String {
    let mut out = String::new();
    let mut rest = e;
    while let Some(b) = rest.find(BEGIN) {
        out.push_str(&rest[..b]);
        let after = &rest[b + BEGIN.len()..];
        let (log_len, next) = match after.find(END) {
            Some(i) => (i, &after[i + END.len()..]),
            None => (after.len(), ""),
        };
        out.push_str(&format!("[verifier log: {log_len} bytes]"));
        rest = next;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_that_are_not_utf8_are_kept() {
        // libbpf quotes the path when it cannot open it.
        let path = std::ffi::CString::new(b"/nonexistent/bpfcompat-\xff\xfe".to_vec()).unwrap();
        let cap = Capture::start();
        // SAFETY: a C string path and no options.
        let obj = unsafe { libbpf_sys::bpf_object__open_file(path.as_ptr(), std::ptr::null()) };
        let out = cap.take();
        assert!(obj.is_null());
        let text = out.text();
        assert!(text.contains("bpfcompat-\u{fffd}\u{fffd}"), "{text}");
    }

    #[test]
    fn splits_verifier_logs_from_libbpf_lines() {
        let out = Output {
            entries: vec![
                (PrintLevel::Debug, "libbpf: loading object 'x'\n".into()),
                (
                    PrintLevel::Warn,
                    "libbpf: prog 'p': BPF program load failed: -EACCES\n".into(),
                ),
                (
                    PrintLevel::Warn,
                    "libbpf: prog 'p': -- BEGIN PROG LOAD LOG --\n0: r0 = 0\nR0 !read_ok\nprocessed 1 insns\n-- END PROG LOAD LOG --\n".into(),
                ),
            ],
        };
        assert_eq!(
            out.verifier_log("p").unwrap(),
            "0: r0 = 0\nR0 !read_ok\nprocessed 1 insns\n"
        );
        assert!(out.verifier_log("q").is_none());
        assert_eq!(
            out.warn_lines(),
            vec![
                "prog 'p': BPF program load failed: -EACCES".to_string(),
                "prog 'p': [verifier log: 40 bytes]".to_string()
            ]
        );
        assert!(!out.text().contains("R0 !read_ok"));
    }
}
