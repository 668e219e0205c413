//! Wait mode: the job arrives on the result port after the guest was set
//! up (and, on the host's side, saved as a snapshot or restored from one).
//! See `bpfcompat_proto::job` for the frame and the answers.

use std::path::Path;
use std::time::Duration;

use bpfcompat_proto::job::{self, Answer, Envelope, Received};

use crate::serial::ResultPort;

/// A job that stops arriving this long is given up on and asked for again:
/// the host sends without pause, so a gap means lost bytes.
const IDLE_LIMIT: Duration = Duration::from_secs(2);

/// Whether the kernel command line asks for wait mode.
pub fn wanted() -> bool {
    std::fs::read_to_string("/proc/cmdline")
        .is_ok_and(|line| line.split_whitespace().any(|w| w == job::WAIT_PARAM))
}

/// Says it is waiting, takes one job (asking again for every corrupt or
/// cut one), makes this guest its own (clock, random state) and unpacks the
/// job over `/`. Returns what did not take, as warnings.
pub fn receive(port: &mut ResultPort) -> Result<Vec<String>, String> {
    port.write(job::WAITING_LINE.as_bytes());
    port.finish();
    let (envelope, archive) = read_job(port)?;
    let warnings = crate::init::make_distinct(envelope.clock_ns, &envelope.seed);
    crate::unpack::unpack(&archive, Path::new("/"))
        .map(|_| warnings)
        .map_err(|why| format!("cannot unpack the job: {why}"))
}

fn read_job(port: &mut ResultPort) -> Result<(Envelope, Vec<u8>), String> {
    let mut stream = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        // Without a header yet there is nothing to time out: the host's
        // timeout bounds the wait.
        let timeout = (!stream.is_empty()).then_some(IDLE_LIMIT);
        let n = port
            .read(&mut buf, timeout)
            .map_err(|e| format!("cannot read the job from the result port: {e}"))?;
        if n == 0 {
            let why = format!("the job stopped after {} bytes", stream.len());
            reject(port, &mut stream, why);
            continue;
        }
        stream.extend_from_slice(&buf[..n]);
        match job::receive(&stream) {
            Received::Incomplete => {}
            Received::Job(envelope, inline) => match archive(&envelope, inline) {
                Ok((archive, digest)) => {
                    port.write(Answer::Ok(digest).line().as_bytes());
                    return Ok((envelope, archive));
                }
                Err(why) => reject(port, &mut stream, why),
            },
            Received::Bad(why) => reject(port, &mut stream, why),
        }
    }
}

/// The archive, inflated from the frame or read from its fw_cfg file, and
/// its sha256 (hashed once: megabytes are slow under emulation).
fn archive(envelope: &Envelope, inline: Vec<u8>) -> Result<(Vec<u8>, String), String> {
    let Some(file) = &envelope.fw_cfg else {
        let digest = job::digest(&inline);
        return Ok((inline, digest));
    };
    let fail = |why: String| format!("{}{}: {why}", job::FW_CFG_FAILED, file.name);
    let bytes = crate::fwcfg::read_file(&file.name, file.len).map_err(fail)?;
    let digest = job::digest(&bytes);
    if digest != file.sha256 {
        return Err(fail("its sha256 is not the one announced".to_owned()));
    }
    Ok((bytes, digest))
}

fn reject(port: &mut ResultPort, stream: &mut Vec<u8>, why: String) {
    eprintln!("bpfcompat-guest: job refused, asking again: {why}");
    port.discard_input();
    stream.clear();
    port.write(Answer::Bad(why).line().as_bytes());
}
