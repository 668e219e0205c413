//! Classification of a failure: a pure function of the failing phase, the
//! errno, libbpf's output, the verifier log and the feature probes.
//!
//! The phase comes first (a map that fails to create is never a verifier
//! problem), then the evidence that names a cause (a CO-RE poison, a helper
//! the verifier does not know), and only then the errno. EACCES from the
//! verifier is a verifier rejection, not a permission problem; a kprobe on a
//! symbol the kernel lacks is a missing target, not an unsupported attach
//! type; a missing BTF attach target means "no BTF" only if the kernel has
//! none at all.
//!
//! One module per phase of a libbpf loader's sequence: [`open`], [`resolve`]
//! (kernel BTF, externs, struct_ops types), [`map`], [`program`] (CO-RE,
//! BTF attach target, the load and its verifier) and [`attach`]. They share
//! [`evidence`] (what is known and how to read it) and [`diagnosis`] (the
//! verdicts and hints several phases give).

mod attach;
mod diagnosis;
mod evidence;
mod map;
mod open;
mod program;
mod resolve;
#[cfg(test)]
mod tests;

use bpfcompat_proto::object::{Diagnosis, Phase};

pub use evidence::{insns_processed, Evidence, LoaderGap};

/// Classifies one failure.
pub fn classify(ev: &Evidence) -> Diagnosis {
    match ev.phase {
        Phase::Open => open::classify_open(ev),
        Phase::KernelBtf => resolve::classify_kernel_btf(ev),
        Phase::Extern => resolve::classify_extern(ev),
        Phase::StructOps => resolve::classify_struct_ops(ev),
        Phase::MapCreate => map::classify_map(ev),
        Phase::CoreRelocation => program::classify_core(ev),
        Phase::AttachTarget => program::classify_attach_target(ev),
        Phase::ProgramLoad => program::classify_load(ev),
        Phase::Attach => attach::classify_attach(ev),
        Phase::Behavior => unreachable!("behavior failures are judged by contract::behavior"),
    }
}
