//! What the host and the guest agent say to each other.
//!
//! The host writes a [`Request`] as JSON into the initramfs at
//! [`REQUEST_PATH`]. The agent answers on its own serial port (ttyS1, never the
//! console) with a [`READY_LINE`] as soon as it runs, then exactly one framed
//! [`Outcome`]: a header carrying the payload length and its sha256, the
//! payload (the outcome's JSON, raw-deflated), and a trailer. Length and
//! digest let the host tell a complete result from one cut short by a crash
//! or a timeout. The port carries about 110 KB/s out of a TCG guest, and
//! the JSON of a dozen objects' outcomes (tens of KB) deflates about tenfold.
//!
//! A guest restored from a snapshot gets its request the other way: the
//! agent waits on the same port for a [`job`] frame (the same framing, host
//! to guest) and acknowledges it.

pub mod job;
pub mod modules;
pub mod object;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where the request sits inside the guest.
pub const REQUEST_PATH: &str = "/bpfcompat/request.json";
/// Root of everything bpfcompat puts into the guest; exported to commands as
/// `BPFCOMPAT_REMOTE_ROOT`.
pub const REMOTE_ROOT: &str = "/bpfcompat";
/// The serial device the agent writes its frames to: the second UART
/// (the 8250's COM2 on x86, the virt machine's second PL011 on arm64).
pub const RESULT_DEVICE: &str = if cfg!(target_arch = "aarch64") {
    "/dev/ttyAMA1"
} else {
    "/dev/ttyS1"
};
/// Sent first, so the host can tell boot time from check time.
pub const READY_LINE: &str = "BPFCOMPAT READY\n";
/// Starts the console line in which the agent says it cannot use the result
/// port: then the console is the only place the host learns why.
pub const RESULT_PORT_FAILURE: &str = "bpfcompat-guest: result port: ";
const HEADER_PREFIX: &str = "BPFCOMPAT RESULT ";
const TRAILER: &str = "\nBPFCOMPAT END\n";

/// Bytes of a command's stdout/stderr the agent keeps (the tail).
pub const OUTPUT_TAIL_BYTES: usize = 4096;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Request {
    pub checks: Vec<CheckRequest>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CheckRequest {
    /// Run `bash -lc <command>` and report its exit status.
    Command {
        command: String,
        /// Guest path of the user's binary, exported as `BPFCOMPAT_BIN`.
        bin: Option<String>,
        /// Guest paths of the artifacts, in command-line order: exported
        /// one a line as `BPFCOMPAT_ARTIFACTS`, the first as
        /// `BPFCOMPAT_ARTIFACT`.
        #[serde(default)]
        artifacts: Vec<String>,
    },
    /// Check a `.bpf.o` with the bundled libbpf validator.
    Object(object::ObjectCheckRequest),
}

/// Everything the agent reports from one boot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Outcome {
    pub kernel: KernelFacts,
    /// One per request check, in request order.
    pub checks: Vec<CheckOutcome>,
    /// Things the agent could not set up (a mount an old kernel lacks, ...).
    /// Not failures: they explain odd results.
    pub setup_warnings: Vec<String>,
    /// Set when the agent could not run the requested checks at all (no
    /// request, a request it cannot parse, a panic in the agent): `checks`
    /// then holds fewer entries than requested, often none. Absent in frames
    /// from agents that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fatal: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KernelFacts {
    pub release: String,
    pub arch: String,
    /// `/sys/kernel/btf/vmlinux` exists.
    pub btf: bool,
    /// What matters to BPF (JIT, LSMs, lockdown); gathered when an object
    /// is checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpf: Option<object::BpfKernelFacts>,
    /// The modules the host asked the agent to load, in load order, and
    /// what each gave; empty (and absent on the wire) when none was asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<modules::ModuleLoadResult>,
    /// How much of its memory the guest used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<GuestMemory>,
}

/// A guest's memory use, for sizing guests: the lowest `MemAvailable` seen
/// (after setup, after the job was unpacked, after each check) and the
/// peak resident size of the agent (the validator runs libbpf in it) and
/// of the largest command it ran.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct GuestMemory {
    pub total_kb: u64,
    pub min_available_kb: u64,
    pub agent_peak_rss_kb: u64,
    pub children_peak_rss_kb: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CheckOutcome {
    Command(CommandOutcome),
    Object(Box<object::ObjectOutcome>),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommandOutcome {
    /// `None` when the command did not exit normally (see `signal`, `error`).
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// The command could not be started at all.
    pub error: Option<String>,
    pub stdout_tail: String,
    pub stderr_tail: String,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    pub duration_ms: u64,
}

/// The most an outcome's JSON may inflate to: a frame claiming more is corrupt.
const MAX_OUTCOME_BYTES: usize = 64 << 20;

/// Serialises an outcome into one frame.
pub fn encode_frame(outcome: &Outcome) -> Vec<u8> {
    let json = serde_json::to_vec(outcome).expect("outcome serialises");
    frame(HEADER_PREFIX, &deflate(&json))
}

/// `bytes` raw-deflated, as what crosses a serial port is sent.
pub fn deflate(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .expect("deflating into memory cannot fail")
}

/// `bytes` inflated, refused past `limit` bytes.
pub fn inflate(bytes: &[u8], limit: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(bytes)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)?;
    if out.len() > limit {
        return Err(std::io::Error::other(format!(
            "it inflates to more than {limit} bytes"
        )));
    }
    Ok(out)
}

/// `<prefix><len> <sha256>\n`, the payload, the trailer.
fn frame(prefix: &str, payload: &[u8]) -> Vec<u8> {
    let digest = hex::encode(Sha256::digest(payload));
    let mut frame = format!("{prefix}{} {digest}\n", payload.len()).into_bytes();
    frame.extend_from_slice(payload);
    frame.extend_from_slice(TRAILER.as_bytes());
    frame
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// No frame header in the stream at all.
    Missing,
    /// A header, but fewer payload bytes or no trailer: the guest died mid-write.
    Truncated { expected: usize, got: usize },
    /// A header that does not parse.
    BadHeader(String),
    /// All bytes arrived but they are not what the agent sent.
    Corrupt(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Missing => write!(f, "the guest sent no result"),
            FrameError::Truncated { expected, got } => write!(
                f,
                "the guest's result was cut short ({got} of {expected} bytes)"
            ),
            FrameError::BadHeader(h) => write!(f, "malformed result header {h:?}"),
            FrameError::Corrupt(why) => write!(f, "corrupt result: {why}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Finds and checks the frame in everything read from the result port.
pub fn decode_frame(stream: &[u8]) -> Result<Outcome, FrameError> {
    let payload = unframe(HEADER_PREFIX, stream)?;
    let json = inflate(payload, MAX_OUTCOME_BYTES)
        .map_err(|e| FrameError::Corrupt(format!("cannot inflate it: {e}")))?;
    serde_json::from_slice(&json).map_err(|e| FrameError::Corrupt(e.to_string()))
}

/// The checked payload of the first `prefix` frame in `stream`.
fn unframe<'a>(prefix: &str, stream: &'a [u8]) -> Result<&'a [u8], FrameError> {
    let start = find(stream, prefix.as_bytes()).ok_or(FrameError::Missing)?;
    let rest = &stream[start + prefix.len()..];
    let eol = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(FrameError::Truncated {
            expected: 0,
            got: 0,
        })?;
    let header = String::from_utf8_lossy(&rest[..eol]).into_owned();
    let (len, digest) = header
        .split_once(' ')
        .and_then(|(l, d)| Some((l.parse::<usize>().ok()?, d.to_owned())))
        .ok_or_else(|| FrameError::BadHeader(header.clone()))?;
    let body = &rest[eol + 1..];
    if body.len() < len + TRAILER.len() {
        return Err(FrameError::Truncated {
            expected: len,
            got: body.len().min(len),
        });
    }
    let payload = &body[..len];
    if &body[len..len + TRAILER.len()] != TRAILER.as_bytes() {
        return Err(FrameError::Corrupt("missing trailer".into()));
    }
    let actual = hex::encode(Sha256::digest(payload));
    if actual != digest {
        return Err(FrameError::Corrupt(format!(
            "sha256 {actual} does not match the header's {digest}"
        )));
    }
    Ok(payload)
}

/// Whether `stream` holds a whole, intact result frame: nothing the guest
/// says after it can change the verdict.
pub fn frame_complete(stream: &[u8]) -> bool {
    unframe(HEADER_PREFIX, stream).is_ok()
}

/// Offset of the ready line in the stream, if the agent got that far.
pub fn ready_offset(stream: &[u8]) -> Option<usize> {
    find(stream, READY_LINE.as_bytes())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome() -> Outcome {
        Outcome {
            kernel: KernelFacts {
                release: "6.1.0".into(),
                arch: "x86_64".into(),
                btf: true,
                bpf: None,
                modules: Vec::new(),
                memory: None,
            },
            checks: vec![CheckOutcome::Command(CommandOutcome {
                exit_code: Some(0),
                signal: None,
                error: None,
                stdout_tail: "BPFCOMPAT RESULT 1 2\nhi".into(),
                stderr_tail: String::new(),
                stdout_bytes: 2,
                stderr_bytes: 0,
                duration_ms: 3,
            })],
            setup_warnings: vec![],
            fatal: None,
        }
    }

    #[test]
    fn round_trips_after_console_noise() {
        let mut stream = b"garbage\r\n".to_vec();
        stream.extend_from_slice(READY_LINE.as_bytes());
        stream.extend(encode_frame(&outcome()));
        assert_eq!(decode_frame(&stream).unwrap(), outcome());
        assert_eq!(ready_offset(&stream), Some(9));
    }

    #[test]
    fn fatal_is_optional_on_the_wire() {
        let json = serde_json::to_string(&outcome()).unwrap();
        assert!(!json.contains("fatal"), "{json}");
        let mut failed = outcome();
        failed.checks.clear();
        failed.fatal = Some("no request at /bpfcompat/request.json".into());
        assert_eq!(decode_frame(&encode_frame(&failed)).unwrap(), failed);
        let without: Outcome = serde_json::from_str(
            r#"{"kernel":{"release":"5.10","arch":"x86_64","btf":true},"checks":[],"setup_warnings":[]}"#,
        )
        .unwrap();
        assert_eq!(without.fatal, None);
    }

    #[test]
    fn detects_truncation_and_corruption() {
        let frame = encode_frame(&outcome());
        assert_eq!(decode_frame(b"nothing"), Err(FrameError::Missing));
        assert!(matches!(
            decode_frame(&frame[..frame.len() - 20]),
            Err(FrameError::Truncated { .. })
        ));
        let mut flipped = frame.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 1;
        assert!(matches!(
            decode_frame(&flipped),
            Err(FrameError::Corrupt(_))
        ));
    }
}
