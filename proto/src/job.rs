//! The job a waiting agent receives after a restore, host to guest on the
//! result port.
//!
//! A guest booted with [`WAIT_PARAM`] on its command line sets itself up,
//! says [`WAITING_LINE`] and waits. The host (after saving the guest as a
//! snapshot, or after restoring one) sends one job frame: a newc archive,
//! raw-deflated (the port is slow, objects shrink about 5x), that the agent
//! inflates and unpacks over `/`, exactly what a boot would have had
//! appended to its initramfs (the request, the objects, `--bin` and its
//! libraries, tools, artifacts, modules). The frame is the result frame's format —
//! length and sha256 in the header, a trailer — preceded by a few newlines,
//! so a byte lost right after the restore only eats a newline.
//!
//! The agent answers each frame with an [`Answer`] line: `OK <sha256>` once
//! the archive arrived whole, `BAD <why>` when it is corrupt or stopped
//! coming (the host then sends it again).

use crate::FrameError;

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

/// The frame that carries `archive`.
pub fn encode(archive: &[u8]) -> Vec<u8> {
    let mut bytes = PREAMBLE.as_bytes().to_vec();
    bytes.extend(crate::frame(JOB_PREFIX, archive));
    bytes
}

/// The hex sha256 an [`Answer::Ok`] carries.
pub fn digest(archive: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(archive))
}

/// What the agent has, given everything it read since it last answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Received<'a> {
    /// Keep reading: no header yet, or not all of the payload.
    Incomplete,
    Job(&'a [u8]),
    /// Answer `BAD` with this reason and start over.
    Bad(String),
}

pub fn receive(stream: &[u8]) -> Received<'_> {
    match crate::unframe(JOB_PREFIX, stream) {
        Ok(archive) => Received::Job(archive),
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

    #[test]
    fn a_job_survives_a_lost_first_byte_and_junk_before_it() {
        let archive = b"070701 pretend this is an archive".to_vec();
        let frame = encode(&archive);
        assert_eq!(receive(&frame[1..]), Received::Job(&archive[..]));
        let mut noisy = b"\x00\xffjunk".to_vec();
        noisy.extend_from_slice(&frame);
        assert_eq!(receive(&noisy), Received::Job(&archive[..]));
    }

    #[test]
    fn a_partial_job_waits_and_a_corrupt_one_is_refused() {
        let frame = encode(b"payload bytes");
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
