//! Getting the job into a waiting guest: wait until the agent waits (or a
//! restore has loaded), save the guest if asked, send the job frame, and
//! send it again when the agent says it arrived corrupt or cut short.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bpfcompat_proto::job::{self as wire, Answer, Envelope, FwCfgFile};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{oneshot, watch};

use super::monitor::Monitor;
use crate::report::JobChannel;

/// Frames sent before the job is given up on.
const ATTEMPTS: u32 = 3;
/// The slowest the result port may carry a job (bytes per second) before
/// an attempt counts as lost; the port does far better (docs/snapshots.md).
const SLOWEST_BYTES_PER_SEC: u64 = 32 << 10;
/// Added to each attempt's allowance, and the bound on each monitor step
/// but saving.
const SLACK: Duration = Duration::from_secs(5);
/// Saving a guest writes its memory to disk.
const SAVE_LIMIT: Duration = Duration::from_secs(60);
/// The largest job sent over the result port when the guest cannot read it
/// from fw_cfg: the port carries about 110 KB/s into a TCG guest (measured:
/// 200 KB in 1.9 s), so past this a boot is faster.
pub const MAX_SERIAL_JOB_BYTES: usize = 128 << 10;

/// A job for a waiting guest: its newc archive, and the file that holds it
/// for QEMU's fw_cfg device when it travels that way.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub archive: &'a [u8],
    pub fw_cfg: Option<&'a Path>,
}

/// How a guest gets going.
#[derive(Debug, Clone, Copy)]
pub enum Start<'a> {
    /// A boot with everything in the initramfs.
    Boot,
    /// A boot in wait mode: when the agent waits, save the guest to `save`,
    /// then send it `job`.
    Wait { job: Job<'a>, save: &'a Path },
    /// Restore the guest saved in `from` (a boot in wait mode of the same
    /// kernel, initramfs and machine) and send it `job`.
    Restore { from: &'a Path, job: Job<'a> },
}

impl<'a> Start<'a> {
    pub(super) fn job(&self) -> Option<Job<'a>> {
        match self {
            Start::Boot => None,
            Start::Wait { job, .. } | Start::Restore { job, .. } => Some(*job),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct JobRecord {
    /// A restore: from QEMU's start until the guest ran again.
    pub restored_after: Option<Duration>,
    /// From QEMU's start until the agent acknowledged the job.
    pub accepted_after: Option<Duration>,
    /// Frames sent.
    pub attempts: u32,
    /// The way the job got in, once it did.
    pub channel: Option<JobChannel>,
    /// A boot in wait mode: whether saving the guest worked.
    pub saved: Option<Result<(), String>>,
    /// Why the job never got in (QEMU is then stopped).
    pub failed: Option<String>,
}

/// What the result port has delivered so far, seen while it is read.
#[derive(Clone)]
pub struct Received {
    bytes: Arc<Mutex<Vec<u8>>>,
    len: watch::Receiver<usize>,
}

/// The reading side of [`Received`].
pub struct Receiving {
    bytes: Arc<Mutex<Vec<u8>>>,
    len: watch::Sender<usize>,
}

impl Received {
    pub fn new() -> (Received, Receiving) {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = watch::channel(0);
        let receiving = Receiving {
            bytes: bytes.clone(),
            len: tx,
        };
        (Received { bytes, len: rx }, receiving)
    }

    fn len(&self) -> usize {
        lock(&self.bytes).len()
    }

    /// The first `Some` of `found` over the bytes from `from` on, as they
    /// come; `None` once the port closed without it.
    async fn until<T>(&mut self, from: usize, found: impl Fn(&[u8]) -> Option<T>) -> Option<T> {
        loop {
            if let Some(t) = found(lock(&self.bytes).get(from..).unwrap_or_default()) {
                return Some(t);
            }
            if self.len.changed().await.is_err() {
                return found(lock(&self.bytes).get(from..).unwrap_or_default());
            }
        }
    }
}

impl Receiving {
    /// Keeps `bytes` (up to `limit` in all); everything so far.
    pub fn push(&self, bytes: &[u8], limit: usize) -> MutexGuard<'_, Vec<u8>> {
        let mut all = lock(&self.bytes);
        let keep = bytes.len().min(limit.saturating_sub(all.len()));
        all.extend_from_slice(&bytes[..keep]);
        self.len.send_replace(all.len());
        all
    }

    pub fn finish(self) -> Vec<u8> {
        std::mem::take(&mut *lock(&self.bytes))
    }
}

fn lock(bytes: &Mutex<Vec<u8>>) -> MutexGuard<'_, Vec<u8>> {
    bytes.lock().unwrap_or_else(|e| e.into_inner())
}

/// Everything between QEMU's start and the job's acknowledgement; `None`
/// for a plain boot. Also the port's writing half: dropping it would shut
/// the port down for the result still to come.
pub async fn drive(
    start: Start<'_>,
    monitor: &Path,
    started: Instant,
    received: Received,
    writer: oneshot::Receiver<OwnedWriteHalf>,
) -> (Option<JobRecord>, Option<OwnedWriteHalf>) {
    let mut kept = None;
    let record = deliver(start, monitor, started, received, writer, &mut kept).await;
    (record, kept)
}

async fn deliver(
    start: Start<'_>,
    monitor: &Path,
    started: Instant,
    mut received: Received,
    writer: oneshot::Receiver<OwnedWriteHalf>,
    kept: &mut Option<OwnedWriteHalf>,
) -> Option<JobRecord> {
    let mut record = JobRecord::default();
    let job = match start {
        Start::Boot => return None,
        Start::Wait { job, save } => {
            let waiting = received
                .until(0, |b| find(b, wire::WAITING_LINE.as_bytes()))
                .await;
            if waiting.is_none() {
                // The guest ended first; the boot's record says how.
                return Some(record);
            }
            record.saved = Some(save_to(monitor, save).await);
            job
        }
        Start::Restore { job, .. } => {
            let deadline = Instant::now() + SLACK;
            let ran = async {
                Monitor::connect(monitor, deadline)
                    .await?
                    .running(deadline)
                    .await
            };
            if let Err(why) = ran.await {
                record.failed = Some(format!("the snapshot was not restored: {why}"));
                return Some(record);
            }
            record.restored_after = Some(started.elapsed());
            job
        }
    };
    let Ok(writer) = writer.await else {
        record.failed = Some("QEMU never connected the result port".to_owned());
        return Some(record);
    };
    let writer = kept.insert(writer);
    match send(writer, &mut received, job, &mut record.attempts).await {
        Ok(channel) => {
            record.accepted_after = Some(started.elapsed());
            record.channel = Some(channel);
        }
        Err(why) => record.failed = Some(why),
    }
    Some(record)
}

async fn save_to(monitor: &Path, path: &Path) -> Result<(), String> {
    let deadline = Instant::now() + SAVE_LIMIT;
    Monitor::connect(monitor, deadline)
        .await?
        .save(path, deadline)
        .await
}

/// Sends the job until the agent acknowledges it, [`ATTEMPTS`] times at
/// most, each bounded by its size: by fw_cfg when QEMU has its file, over
/// the port itself once the guest says it cannot read fw_cfg.
async fn send(
    writer: &mut OwnedWriteHalf,
    received: &mut Received,
    job: Job<'_>,
    attempts: &mut u32,
) -> Result<JobChannel, String> {
    let digest = wire::digest(job.archive);
    // Why the guest could not read fw_cfg, once it said so.
    let mut refused = job
        .fw_cfg
        .is_none()
        .then(|| "QEMU has no fw_cfg file".to_owned());
    let mut from = received.len();
    let mut last = String::new();
    while *attempts < ATTEMPTS {
        *attempts += 1;
        let frame = frame(job, refused.as_deref(), &digest)?;
        let allowance = SLACK + Duration::from_secs(frame.len() as u64 / SLOWEST_BYTES_PER_SEC);
        let attempt = async {
            writer
                .write_all(&frame)
                .await
                .map_err(|e| format!("cannot write to the result port: {e}"))?;
            received
                .until(from, Answer::find)
                .await
                .ok_or_else(|| "the guest closed the result port".to_owned())
        };
        match tokio::time::timeout(allowance, attempt).await {
            Ok(Ok((Answer::Ok(got), _))) if got == digest => {
                return Ok(match refused {
                    None => JobChannel::FwCfg,
                    Some(_) => JobChannel::Serial,
                })
            }
            Ok(Ok((answer, end))) => {
                from += end;
                match answer {
                    Answer::Bad(why) if why.starts_with(wire::FW_CFG_FAILED) => {
                        refused = Some(why[wire::FW_CFG_FAILED.len()..].to_owned());
                    }
                    answer => last = format!("{answer:?}"),
                }
            }
            Ok(Err(why)) => return Err(why),
            Err(_) => {
                from = received.len();
                last = format!("no answer in {} s", allowance.as_secs());
            }
        }
    }
    Err(format!(
        "the guest did not take its job ({} bytes) in {ATTEMPTS} attempts; the last: {last}",
        job.archive.len()
    ))
}

/// One frame of `job`: the envelope with a fresh clock and seed, and the
/// archive itself (deflated) once fw_cfg was `refused` (why).
fn frame(job: Job<'_>, refused: Option<&str>, digest: &str) -> Result<Vec<u8>, String> {
    let serial = refused.is_some();
    let envelope = Envelope {
        fw_cfg: (!serial).then(|| FwCfgFile {
            name: wire::FW_CFG_NAME.to_owned(),
            len: job.archive.len() as u64,
            sha256: digest.to_owned(),
        }),
        clock_ns: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
        seed: seed()?,
    };
    let frame = wire::encode(&envelope, serial.then_some(job.archive));
    if let Some(why) = refused.filter(|_| frame.len() > MAX_SERIAL_JOB_BYTES) {
        return Err(format!(
            "no fw_cfg ({why}), and a job of {} bytes deflated is over the \
             {MAX_SERIAL_JOB_BYTES} the result port carries faster than a boot",
            frame.len(),
        ));
    }
    Ok(frame)
}

/// 32 bytes from the host's RNG, in hex.
fn seed() -> Result<String, String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read the host's /dev/urandom: {e}"))?;
    Ok(hex::encode(bytes))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
