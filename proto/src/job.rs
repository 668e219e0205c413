//! The job a waiting agent receives after a restore, host to guest on the
//! result port.
//!
//! A guest booted with [`WAIT_PARAM`] on its command line sets itself up,
//! says [`WAITING_LINE`] and waits. The host (after saving the guest as a
//! snapshot, or after restoring one) sends one job frame; the agent unpacks
//! the job's newc archive over `/`, exactly what a boot would have had
//! appended to its initramfs (the request, the objects, `--bin` and its
//! libraries, tools, artifacts, modules). The frame is the result frame's
//! format (length and sha256 in the header, a trailer) preceded by a few
//! newlines, so a byte lost right after the restore only eats a newline.
//!
//! The frame's payload is an [`Envelope`] (one JSON line), then the archive
//! raw-deflated. The serial port carries about 110 KB/s into a TCG guest, so
//! the archive usually travels by QEMU's fw_cfg device instead (a file given
//! on QEMU's command line, read by the agent with port I/O and DMA at memory
//! speed): the envelope then names it, the file holds the archive as it is
//! (inflating megabytes costs more under emulation than moving them), and
//! the frame holds no archive.
//!
//! The agent answers each frame with an [`Answer`] line: `OK <sha256 of the
//! archive>` once it arrived whole, `BAD <why>` when it is corrupt or stopped
//! coming (the host then sends it again), `BAD fw_cfg: <why>` when the
//! fw_cfg file could not be read (the host then sends the archive inline).

use serde::{Deserialize, Serialize};

use crate::FrameError;

/// The fw_cfg file a job travels in.
pub const FW_CFG_NAME: &str = "opt/bpfcompat/job";
/// How a `BAD` answer starts when the fw_cfg file could not be read.
pub const FW_CFG_FAILED: &str = "fw_cfg: ";

/// What comes before the archive: where it is, and what a restored guest
/// must not share with the guest its snapshot was taken from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The archive is this fw_cfg file; `None`: it follows in the frame.
    pub fw_cfg: Option<FwCfgFile>,
    /// The host's wall clock as it sent the frame, in nanoseconds since the
    /// epoch: the guest's clock is set to it.
    pub clock_ns: u64,
    /// Random bytes, in hex, credited to the guest's RNG and reseeding it.
    pub seed: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FwCfgFile {
    pub name: String,
    pub len: u64,
    pub sha256: String,
}

/// On the kernel command line: wait for a job instead of reading the
/// request from the initramfs.
pub const WAIT_PARAM: &str = "bpfcompat.wait";
/// Said once setup is done and the agent waits for its job: the moment a
/// snapshot is taken.
pub const WAITING_LINE: &str = "BPFCOMPAT WAITING\n";
/// The largest job an agent accepts: a header claiming more is corrupt.
pub const MAX_JOB_BYTES: usize = 256 << 20;
const JOB_PREFIX: &str = "BPFCOMPAT JOB ";
const PREAMBLE: &str = "\n\n\n\n";
const ACK_PREFIX: &str = "BPFCOMPAT JOB OK ";
const NAK_PREFIX: &str = "BPFCOMPAT JOB BAD ";

/// The frame that carries `envelope` and the archive `inline`, deflated
/// (nothing when the envelope names a fw_cfg file).
pub fn encode(envelope: &Envelope, inline: Option<&[u8]>) -> Vec<u8> {
    let mut payload = serde_json::to_vec(envelope).expect("an envelope serialises");
    payload.push(b'\n');
    if let Some(archive) = inline {
        payload.extend(crate::deflate(archive));
    }
    let mut bytes = PREAMBLE.as_bytes().to_vec();
    bytes.extend(crate::frame(JOB_PREFIX, &payload));
    bytes
}

/// The hex sha256 an [`Answer::Ok`] carries.
pub fn digest(archive: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(archive))
}

/// What the agent has, given everything it read since it last answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Keep reading: no header yet, or not all of the payload.
    Incomplete,
    /// The envelope and the archive that followed it, inflated (empty when
    /// it is in fw_cfg).
    Job(Envelope, Vec<u8>),
    /// Answer `BAD` with this reason and start over.
    Bad(String),
}

pub fn receive(stream: &[u8]) -> Received {
    match crate::unframe(JOB_PREFIX, stream) {
        Ok(payload) => {
            let eol = payload.iter().position(|&b| b == b'\n');
            let envelope = eol.and_then(|at| serde_json::from_slice(&payload[..at]).ok());
            let (Some(envelope), Some(at)) = (envelope, eol) else {
                return Received::Bad("the job's envelope does not parse".to_owned());
            };
            let inline = &payload[at + 1..];
            if inline.is_empty() {
                return Received::Job(envelope, Vec::new());
            }
            match crate::inflate(inline, MAX_JOB_BYTES) {
                Ok(archive) => Received::Job(envelope, archive),
                Err(e) => Received::Bad(format!("cannot inflate the job: {e}")),
            }
        }
        Err(FrameError::Truncated { expected, .. }) if expected > MAX_JOB_BYTES => Received::Bad(
            format!("a job of {expected} bytes is over the {MAX_JOB_BYTES}-byte limit"),
        ),
        Err(FrameError::Missing | FrameError::Truncated { .. }) => Received::Incomplete,
        Err(e) => Received::Bad(e.to_string()),
    }
}

/// The agent's answer to one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The archive arrived; its sha256.
    Ok(String),
    Bad(String),
}

impl Answer {
    pub fn line(&self) -> String {
        match self {
            Answer::Ok(digest) => format!("{ACK_PREFIX}{digest}\n"),
            Answer::Bad(why) => format!("{NAK_PREFIX}{}\n", why.replace('\n', " ")),
        }
    }

    /// The first whole answer line in `stream`, and the offset after it.
    pub fn find(stream: &[u8]) -> Option<(Answer, usize)> {
        [ACK_PREFIX, NAK_PREFIX]
            .iter()
            .filter_map(|prefix| {
                let start = crate::find(stream, prefix.as_bytes())?;
                let rest = &stream[start + prefix.len()..];
                let eol = rest.iter().position(|&b| b == b'\n')?;
                let text = String::from_utf8_lossy(&rest[..eol]).into_owned();
                let answer = if *prefix == ACK_PREFIX {
                    Answer::Ok(text)
                } else {
                    Answer::Bad(text)
                };
                Some((start, answer, start + prefix.len() + eol + 1))
            })
            .min_by_key(|(start, ..)| *start)
            .map(|(_, answer, end)| (answer, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            fw_cfg: None,
            clock_ns: 1_700_000_000_000_000_000,
            seed: "00ff".into(),
        }
    }

    #[test]
    fn a_job_survives_a_lost_first_byte_and_junk_before_it() {
        let archive = b"070701 pretend this is an\narchive".to_vec();
        let frame = encode(&envelope(), Some(&archive));
        assert_eq!(
            receive(&frame[1..]),
            Received::Job(envelope(), archive.clone())
        );
        let mut noisy = b"\x00\xffjunk".to_vec();
        noisy.extend_from_slice(&frame);
        assert_eq!(receive(&noisy), Received::Job(envelope(), archive));
    }

    #[test]
    fn a_job_in_fw_cfg_carries_only_its_envelope() {
        let envelope = Envelope {
            fw_cfg: Some(FwCfgFile {
                name: FW_CFG_NAME.into(),
                len: 3,
                sha256: digest(b"abc"),
            }),
            ..envelope()
        };
        let frame = encode(&envelope, None);
        assert_eq!(receive(&frame), Received::Job(envelope, Vec::new()));
        let garbled = crate::frame(JOB_PREFIX, b"{not json\n");
        assert!(matches!(receive(&garbled), Received::Bad(why) if why.contains("envelope")));
    }

    #[test]
    fn a_partial_job_waits_and_a_corrupt_one_is_refused() {
        let frame = encode(&envelope(), Some(b"payload bytes"));
        assert_eq!(receive(&frame[..frame.len() - 3]), Received::Incomplete);
        assert_eq!(receive(b"no header yet"), Received::Incomplete);
        let mut flipped = frame.clone();
        let at = flipped.len() - 20;
        flipped[at] ^= 0x20;
        assert!(matches!(receive(&flipped), Received::Bad(_)), "{flipped:?}");
        let huge = format!("{JOB_PREFIX}{} 00\n", MAX_JOB_BYTES + 1);
        assert!(matches!(receive(huge.as_bytes()), Received::Bad(why) if why.contains("limit")));
    }

    #[test]
    fn answers_are_found_in_the_result_stream_in_order() {
        let digest = digest(b"x");
        let mut stream = b"BPFCOMPAT READY\n".to_vec();
        stream.extend(Answer::Bad("cut\nshort".into()).line().as_bytes());
        let first = stream.len();
        stream.extend(Answer::Ok(digest.clone()).line().as_bytes());
        assert_eq!(
            Answer::find(&stream),
            Some((Answer::Bad("cut short".into()), first))
        );
        assert_eq!(
            Answer::find(&stream[first..]),
            Some((Answer::Ok(digest), stream.len() - first))
        );
        assert_eq!(Answer::find(b"BPFCOMPAT JOB OK abc"), None);
    }
}
