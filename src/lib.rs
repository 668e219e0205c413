//! bpfcompat: on which real Linux kernels does my eBPF load, attach and run?
//!
//! The library follows the flow of a run, one module per stage (see
//! docs/architecture.md):
//!
//! matrix → kernel → object → predict → manifest → boot → run → report → results / github
//!
//! - [`matrix`]: the kernel matrix file, its lock file, shards, the shipped
//!   matrices.
//! - [`kernel`]: fetching, recognising, extracting and caching kernels.
//! - [`object`]: static inspection of a `.bpf.o` on the host.
//! - [`predict`]: the preflight: what stands between each object and each
//!   kernel, from the object and the kernel's BTF, before booting; each
//!   object's minimum upstream kernel.
//! - [`btf`]: the BPF Type Format, read for objects and kernels alike.
//! - [`manifest`]: manifests (the loader contract of an object) and suites,
//!   in the Go bpfcompat's format, checked against the objects.
//! - [`boot`]: the initramfs we generate and one supervised QEMU boot.
//! - [`run`]: what runs in every guest, the run across a matrix, and what
//!   one boot means (the verdict).
//! - [`report`]: the report model, its JSON and Markdown.
//! - [`results`]: the run history, comparing two reports, merging shards.
//! - [`github`]: publishing a report to a pull request.
//! - [`arch`]: x86_64 and arm64, and what each is called where.
//! - [`term`]: progress lines and tables on the terminal; [`escape`]: making
//!   untrusted text inert in each rendering.
//! - [`commands`] and [`cli`]: the edge, where flags become options and
//!   stages become subcommands.

pub mod arch;
pub mod boot;
pub mod btf;
pub mod cli;
pub mod commands;
pub mod escape;
pub mod github;
pub mod kernel;
pub mod manifest;
pub mod matrix;
pub mod object;
pub mod predict;
pub mod report;
pub mod results;
pub mod run;
pub mod term;
pub mod yaml;
