//! Opening the object: libbpf could not read or parse the file.

use bpfcompat_proto::object::{Diagnosis, FailureClass, Phase};

use super::diagnosis::diag;
use super::evidence::{errno_text, find_line_or, Evidence, EACCES, EPERM};

pub fn classify_open(ev: &Evidence) -> Diagnosis {
    if matches!(ev.errno, Some(EACCES) | Some(EPERM)) {
        return diag(
            FailureClass::PermissionDenied,
            Phase::Open,
            find_line_or(ev, &["failed to open", "open"], || {
                format!("cannot open {}: {}", ev.subject, errno_text(ev.errno))
            }),
            "the loader may not read the object file: check its permissions and the \
             loader's user",
        );
    }
    let reason = find_line_or(
        ev,
        &["elf:", "failed", "invalid", "Invalid", "error", "Error"],
        || format!("libbpf could not open the object: {}", errno_text(ev.errno)),
    );
    diag(
        FailureClass::InvalidObject,
        Phase::Open,
        reason,
        "libbpf cannot parse this file as a BPF object: build it with \
         `clang -target bpf -O2 -g -c` and pass the .bpf.o itself",
    )
}
