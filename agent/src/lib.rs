//! The guest agent, shipped as the `bpfcompat-guest` binary: PID 1 inside
//! every booted kernel.
//!
//! 1. open the result port (ttyS1) and say READY;
//! 2. mount what BPF tooling expects and bring `lo` up (failures are recorded
//!    as setup warnings: old or tiny kernels lack some file systems);
//!    In wait mode (`bpfcompat.wait` on the command line) it then says
//!    WAITING and takes the job, the rest of its initramfs, over the result
//!    port (`job`): the host snapshots a guest at that point and restores it;
//! 3. load the kernel modules the host shipped, if any (`modules`);
//! 4. run each requested check;
//! 5. write one framed [`Outcome`] to the result port and reset the machine
//!    (QEMU runs with `-no-reboot`, so that ends it).
//!
//! PID 1 must never exit or panic (the kernel would panic): every failure,
//! panics included, ends up as a frame with `fatal` set.

mod command;
mod fwcfg;
mod init;
mod job;
mod modules;
mod object;
mod serial;
mod unpack;

use std::panic::{self, AssertUnwindSafe};

use bpfcompat_proto::{self as proto, CheckOutcome, CheckRequest, Outcome, Request};

/// Runs the agent; never returns (it resets the machine).
pub fn main() {
    if std::process::id() != 1 {
        eprintln!(
            "bpfcompat-guest is the /init of bpfcompat's guest kernels: it mounts over /dev \
             and /tmp and reboots the machine, so it refuses to run as PID {}",
            std::process::id()
        );
        std::process::exit(2);
    }
    let mut port = serial::ResultPort::open(proto::RESULT_DEVICE);
    port.write(proto::READY_LINE.as_bytes());

    let mut warnings = Vec::new();
    let outcome = match panic::catch_unwind(AssertUnwindSafe(|| run(&mut port, &mut warnings))) {
        Ok(outcome) => outcome,
        Err(payload) => {
            let why = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            failed(format!("the guest agent panicked: {why}"), warnings)
        }
    };
    port.write(&proto::encode_frame(&outcome));
    port.finish();
    init::reset_machine();
}

fn run(port: &mut serial::ResultPort, warnings: &mut Vec<String>) -> Outcome {
    warnings.extend(init::setup());
    init::sample_memory();
    if job::wanted() {
        match job::receive(port) {
            Ok(distinct) => warnings.extend(distinct),
            Err(why) => return failed(why, std::mem::take(warnings)),
        }
        init::sample_memory();
    }
    let request = match read_request() {
        Ok(request) => request,
        Err(why) => return failed(why, std::mem::take(warnings)),
    };
    // Before any check: what they attach to may be in a module.
    let modules = modules::load_requested().unwrap_or_else(|why| {
        warnings.push(why);
        Vec::new()
    });
    // Gathered once, and only when an object is checked: the facts mount
    // securityfs and read several files a command check does not need.
    let mut bpf_facts = None;
    let mut checks = Vec::with_capacity(request.checks.len());
    for (n, check) in request.checks.iter().enumerate() {
        // On the console, so a check that hangs the guest is named in the
        // console tail of its timeout.
        let what = match check {
            CheckRequest::Command { .. } => "the command",
            CheckRequest::Object(req) => &req.path,
        };
        eprintln!(
            "bpfcompat-guest: check {} of {}: {what}",
            n + 1,
            request.checks.len()
        );
        checks.push(match check {
            CheckRequest::Command {
                command,
                bin,
                artifacts,
            } => CheckOutcome::Command(command::run(&command::Spec::guest(
                command,
                bin.as_deref(),
                artifacts,
            ))),
            CheckRequest::Object(req) => {
                let facts = bpf_facts.get_or_insert_with(object::kernel_facts);
                CheckOutcome::Object(Box::new(object::check_object_with(
                    std::path::Path::new(&req.path),
                    &req.contract,
                    facts,
                )))
            }
        });
        init::sample_memory();
    }
    let mut kernel = init::kernel_facts();
    kernel.bpf = bpf_facts;
    kernel.modules = modules;
    Outcome {
        kernel,
        checks,
        setup_warnings: std::mem::take(warnings),
        fatal: None,
    }
}

fn read_request() -> Result<Request, String> {
    let text = std::fs::read(proto::REQUEST_PATH)
        .map_err(|e| format!("cannot read the request {}: {e}", proto::REQUEST_PATH))?;
    serde_json::from_slice(&text)
        .map_err(|e| format!("cannot parse the request {}: {e}", proto::REQUEST_PATH))
}

fn failed(why: String, setup_warnings: Vec<String>) -> Outcome {
    Outcome {
        kernel: init::kernel_facts(),
        checks: Vec::new(),
        setup_warnings,
        fatal: Some(why),
    }
}
