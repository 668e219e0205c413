//! The preflight at the edge: `inspect` (what an object needs),
//! `kernels inspect` (what a kernel offers) and `test --predict-only`
//! (every object against every kernel, without booting).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use crate::commands::pinning;
use crate::escape;
use crate::kernel::{self, KernelCache, Mirror};
use crate::matrix::KernelSpec;
use crate::predict::kernel::KernelFacts;
use crate::predict::{self, KernelSource, Subject};
use crate::report::inspection::ObjectSummary;
use crate::report::prediction::{MinKernel, Predicted, Prediction};
use crate::run::check::{self, CheckSpec};

/// `bpfcompat inspect`: what each object asks of a kernel.
pub fn inspect(paths: &[PathBuf], json: bool) -> anyhow::Result<u8> {
    let spec = CheckSpec::Objects(
        paths
            .iter()
            .map(|p| check::ObjectCheck {
                path: p.clone(),
                manifest: None,
                case: None,
                mode: Default::default(),
                auto_fixups: true,
                test: None,
            })
            .collect(),
    );
    let prepared = check::prepare(&spec)?;
    let mut out = Vec::new();
    for a in &prepared.artifacts {
        let summary = a.inspection.as_ref().expect("objects are inspected");
        if json {
            out.push(serde_json::json!({ "object": summary, "min_kernel": a.min_kernel }));
        } else {
            print!("{}", describe(summary, a.min_kernel.as_ref()));
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(0)
}

/// An object's needs, as `inspect` prints them.
fn describe(o: &ObjectSummary, min: Option<&MinKernel>) -> String {
    let plain = |t: &str| escape::plain_line(t);
    let mut s = format!("{}\n", plain(&o.path.display().to_string()));
    if let Some(min) = min {
        s += &format!("  minimum kernel: {}\n", plain(&min.line()));
    }
    s += &format!(
        "  license: {}\n",
        plain(o.license.as_deref().unwrap_or("(none)"))
    );
    for p in &o.programs {
        s += &format!(
            "  program {} ({}): type {}",
            plain(&p.name),
            plain(&p.section),
            plain(p.prog_type.as_deref().unwrap_or("unknown"))
        );
        if let Some(t) = &p.attach_type {
            s += &format!(", attach type {}", plain(t));
        }
        if let Some(t) = &p.attach_target {
            s += &format!(", {} target {}", plain(&t.kind), plain(&t.name));
        }
        s += "\n";
        let helpers: Vec<String> = o
            .helpers
            .iter()
            .filter(|h| h.programs.contains(&p.name))
            .map(|h| format!("{} ({})", h.name.as_deref().unwrap_or("?"), h.id))
            .collect();
        if !helpers.is_empty() {
            s += &format!("    helpers: {}\n", helpers.join(", "));
        }
        if !p.kfuncs.is_empty() {
            s += &format!("    kfuncs: {}\n", plain(&p.kfuncs.join(", ")));
        }
        if let Some(u) = &p.unchecked_lookup {
            s += &format!(
                "    instruction {} dereferences the lookup of map {} before any NULL check\n",
                u.insn,
                plain(&u.map)
            );
        }
    }
    for m in &o.maps {
        s += &format!(
            "  map {}: {}{}\n",
            plain(&m.name),
            plain(m.map_type_name.as_deref().unwrap_or("?")),
            m.map_flags
                .filter(|f| *f != 0)
                .map(|f| format!(", flags {f:#x}"))
                .unwrap_or_default()
        );
    }
    for r in &o.core {
        s += &format!(
            "  CO-RE {} {} {}{} in {}{}\n",
            plain(&r.kind),
            plain(&r.type_kind),
            plain(&r.type_name),
            r.member
                .as_deref()
                .map(|m| format!(".{}", plain(m)))
                .unwrap_or_default(),
            plain(&r.program),
            if r.guarded { " (guarded)" } else { "" }
        );
    }
    if !o.globals.is_empty() {
        let names: Vec<String> = o
            .globals
            .iter()
            .map(|g| format!("{}:{}", g.section, g.name))
            .collect();
        s += &format!("  global data: {}\n", plain(&names.join(", ")));
    }
    if !o.btf_kinds.is_empty() {
        s += &format!(
            "  BTF kinds libbpf rewrites for older kernels: {}\n",
            o.btf_kinds.join(", ")
        );
    }
    s
}

/// What `kernels inspect` prints of one kernel (and `--json` writes).
#[derive(Debug, Serialize)]
pub struct KernelSummary {
    pub id: String,
    pub image_sha256: String,
    pub version: Option<String>,
    pub btf: bool,
    pub btf_bytes: Option<usize>,
    pub types: Option<usize>,
    pub functions: Option<usize>,
    pub structs: Option<usize>,
    pub kfuncs_tagged: Option<usize>,
    pub last_helper: Option<String>,
    pub map_types: Vec<String>,
    pub prog_types: Vec<String>,
    pub attach_types: Vec<String>,
    pub modules: bool,
    /// Without BTF: what its image shows (a JIT, kprobes).
    pub features: Option<crate::kernel::Features>,
    /// Its `.config`: how many options it sets, and those the preflight
    /// reads (`true`: built in or a module).
    pub config: Option<ConfigSummary>,
}

#[derive(Debug, Serialize)]
pub struct ConfigSummary {
    pub options: usize,
    pub read: std::collections::BTreeMap<&'static str, Option<bool>>,
}

/// `bpfcompat kernels inspect NAME`.
pub fn inspect_kernel(
    cache: &KernelCache,
    matrix: Option<&Path>,
    id: &str,
    json: bool,
) -> anyhow::Result<u8> {
    let matrix = pinning::prepare_matrix(matrix, false, cache)?;
    let Some(spec) = matrix.kernels.iter().find(|k| k.id == id) else {
        let ids: Vec<&str> = matrix.kernels.iter().map(|k| k.id.as_str()).collect();
        anyhow::bail!(
            "{}: no kernel {id:?} in this matrix; its kernels are {}",
            matrix.path.display(),
            ids.join(", ")
        );
    };
    let source = read_kernel(cache, spec)?;
    let facts = source.facts()?;
    let summary = summarise(&spec.id, &source, &facts);
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", describe_kernel(&summary));
    }
    Ok(0)
}

fn read_kernel(cache: &KernelCache, spec: &KernelSpec) -> anyhow::Result<KernelSource> {
    let opts = kernel::Options {
        arch: spec.arch,
        mirror: Mirror::from_env(),
        ..kernel::Options::default()
    };
    let resolved = kernel::resolve(cache, &spec.source, &opts)
        .with_context(|| format!("kernel {}", spec.id))?;
    let config = spec.config.as_deref();
    KernelSource::read(cache, &resolved, spec.modules.source.is_some(), config)
        .with_context(|| format!("kernel {}: reading its BTF and config", spec.id))
}

fn summarise(id: &str, source: &KernelSource, facts: &KernelFacts<'_>) -> KernelSummary {
    let btf = facts.btf.as_ref();
    let names = |e: &str, prefix: &str| -> Vec<String> {
        btf.map(|b| b.enumerators(e))
            .unwrap_or_default()
            .into_iter()
            .filter(|(n, _)| !n.starts_with("__"))
            .filter_map(|(n, _)| Some(n.strip_prefix(prefix)?.to_lowercase()))
            .collect()
    };
    let counts = btf.map(|b| b.counts());
    KernelSummary {
        id: id.to_owned(),
        image_sha256: source.image_sha256.clone(),
        version: facts.version.map(|v| v.to_string()),
        btf: btf.is_some(),
        btf_bytes: source.btf.as_ref().map(Vec::len),
        types: counts.map(|c| c.0),
        functions: counts.map(|c| c.1),
        structs: counts.map(|c| c.2),
        kfuncs_tagged: btf.map(|b| b.kfunc_count()),
        last_helper: btf.and_then(|b| {
            let helpers = b.enumerators("bpf_func_id");
            let (name, id) = helpers
                .iter()
                .filter(|(n, _)| !n.starts_with("__"))
                .max_by_key(|(_, v)| *v)?;
            Some(format!(
                "{} ({id})",
                name.strip_prefix("BPF_FUNC_").unwrap_or(name)
            ))
        }),
        map_types: names("bpf_map_type", "BPF_MAP_TYPE_"),
        prog_types: names("bpf_prog_type", "BPF_PROG_TYPE_"),
        attach_types: names("bpf_attach_type", "BPF_"),
        modules: facts.modules,
        features: facts.features,
        config: facts.config.map(|c| ConfigSummary {
            options: c.len(),
            read: crate::predict::CONFIG_READ
                .iter()
                .map(|o| (*o, c.enabled(o)))
                .collect(),
        }),
    }
}

fn describe_kernel(k: &KernelSummary) -> String {
    let plain = |t: &str| escape::plain_line(t);
    let mut s = format!(
        "{} (image sha256 {})
",
        plain(&k.id),
        k.image_sha256
    );
    s += &format!("  release: {}\n", k.version.as_deref().unwrap_or("unknown"));
    match &k.config {
        Some(c) => {
            let read: Vec<String> = c
                .read
                .iter()
                .map(|(o, on)| {
                    let on = match on {
                        Some(true) => "on",
                        Some(false) => "off",
                        None => "not said",
                    };
                    format!("{} {on}", o.trim_start_matches("CONFIG_"))
                })
                .collect();
            s += &format!("  config: {} options; {}\n", c.options, read.join(", "));
        }
        None => s += "  config: none (its source ships none; give the matrix entry `config:`)\n",
    }
    if !k.btf {
        s += "  BTF: none (built without CONFIG_DEBUG_INFO_BTF): predictions use the release\n";
        if let Some(f) = k.features {
            let yes = |b: bool| if b { "yes" } else { "no" };
            s += &format!(
                "  its image shows: JIT {} (bpf_jit_enable), kprobes {} (kprobe_events)\n",
                yes(f.jit),
                yes(f.kprobes)
            );
        }
        return s;
    }
    s += &format!(
        "  BTF: {} bytes, {} types, {} functions, {} structs\n",
        k.btf_bytes.unwrap_or(0),
        k.types.unwrap_or(0),
        k.functions.unwrap_or(0),
        k.structs.unwrap_or(0)
    );
    s += &format!(
        "  last helper: {}\n",
        k.last_helper.as_deref().unwrap_or("none")
    );
    s += &format!(
        "  map types ({}): {}\n",
        k.map_types.len(),
        k.map_types.join(", ")
    );
    s += &format!(
        "  program types ({}): {}\n",
        k.prog_types.len(),
        k.prog_types.join(", ")
    );
    s += &format!(
        "  attach types ({}): {}\n",
        k.attach_types.len(),
        k.attach_types.join(", ")
    );
    s += &format!(
        "  kfuncs tagged in BTF: {}{}\n",
        k.kfuncs_tagged.unwrap_or(0),
        if k.kfuncs_tagged == Some(0) {
            " (kernels before 6.9 do not tag them; functions are looked up by name)"
        } else {
            ""
        }
    );
    if k.modules {
        s += "  modules: a module tree comes with it; targets in modules are not judged\n";
    }
    s
}

/// `test --predict-only`'s JSON (`--out`).
#[derive(Debug, Serialize)]
pub struct PreflightReport {
    pub schema: &'static str,
    pub objects: Vec<ObjectPrediction>,
}

#[derive(Debug, Serialize)]
pub struct ObjectPrediction {
    pub name: String,
    pub min_kernel: Option<MinKernel>,
    /// By kernel id, in the matrix's order.
    pub kernels: BTreeMap<String, Prediction>,
}

/// `bpfcompat test --predict-only`: every object against every kernel of
/// the matrix, no QEMU. Exit 2 when a required kernel is predicted blocked.
pub fn predict_only(
    spec: &CheckSpec,
    matrix: Option<&Path>,
    locked: bool,
    cache: &KernelCache,
    out: Option<&Path>,
) -> anyhow::Result<u8> {
    let prepared = check::prepare(spec)?;
    let suite_matrix = prepared.suite.as_ref().and_then(|s| s.matrix.as_deref());
    let matrix = pinning::prepare_matrix(matrix.or(suite_matrix), locked, cache)?;
    let subjects = check::subjects(&prepared.payload, &prepared.artifacts);
    let archs: Vec<Option<crate::arch::Arch>> = match &prepared.payload {
        crate::boot::initramfs::Payload::Objects(o) => o.iter().map(|o| o.arch).collect(),
        _ => Vec::new(),
    };
    let mut objects: Vec<ObjectPrediction> = prepared
        .artifacts
        .iter()
        .map(|a| ObjectPrediction {
            name: a.name.clone(),
            min_kernel: a.min_kernel.clone(),
            kernels: BTreeMap::new(),
        })
        .collect();
    let mut blocked_required = false;
    let mut time = Timing::default();
    for spec in &matrix.kernels {
        let started = Instant::now();
        let source = read_kernel(cache, spec)?;
        let read = Instant::now();
        let facts = source.facts()?;
        let indexed = Instant::now();
        for (i, subject) in subjects.iter().enumerate() {
            let fits = archs
                .get(i)
                .copied()
                .flatten()
                .is_none_or(|a| a == spec.arch);
            let Some(Subject { summary, plan }) = subject.as_ref().filter(|_| fits) else {
                continue;
            };
            let p = predict::predict(summary, plan, &facts);
            blocked_required |= spec.required && p.verdict == Predicted::Blocked;
            objects[i].kernels.insert(spec.id.clone(), p);
            time.cells += 1;
        }
        time.read += read - started;
        time.index += indexed - read;
        time.predict += indexed.elapsed();
    }
    print!("{}", predictions_text(&objects, &matrix.kernels));
    eprintln!("{}", time.line(matrix.kernels.len()));
    if let Some(out) = out {
        let report = PreflightReport {
            schema: "bpfcompat.preflight/v1",
            objects,
        };
        let json = serde_json::to_string_pretty(&report)? + "\n";
        crate::report::write_atomically(out, json.as_bytes())
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    Ok(if blocked_required { 2 } else { 0 })
}

/// Where the preflight's time went, for the line it ends with.
#[derive(Default)]
struct Timing {
    cells: u32,
    /// Resolving each kernel and reading its BTF (from the cache, or out
    /// of its image the first time).
    read: Duration,
    /// Parsing and indexing the BTF.
    index: Duration,
    predict: Duration,
}

impl Timing {
    fn line(&self, kernels: usize) -> String {
        let per_kernel = |d: Duration| d.as_secs_f64() * 1000.0 / kernels.max(1) as f64;
        format!(
            "bpfcompat: preflight of {} object × kernel cells: {:.1} ms per kernel to read its BTF, \
             {:.1} ms to index it, {:.1} µs per cell to predict",
            self.cells,
            per_kernel(self.read),
            per_kernel(self.index),
            self.predict.as_secs_f64() * 1e6 / f64::from(self.cells.max(1)),
        )
    }
}

fn predictions_text(objects: &[ObjectPrediction], kernels: &[KernelSpec]) -> String {
    let plain = |t: &str| escape::plain_line(t);
    let mut s = String::new();
    for o in objects {
        s += &plain(&o.name);
        if let Some(m) = &o.min_kernel {
            s += &format!(": {}", plain(&m.line()));
        }
        s += "\n";
        for k in kernels {
            let Some(p) = o.kernels.get(&k.id) else {
                continue;
            };
            match p.verdict {
                Predicted::NoKnownObstacle => {
                    s += &format!("  {}: no known obstacle\n", plain(&k.id))
                }
                Predicted::Blocked => {
                    s += &format!("  {}: blocked\n", plain(&k.id));
                    for ob in &p.obstacles {
                        s += &format!("    - {}\n", plain(&ob.reason));
                    }
                }
            }
        }
    }
    s + "Predictions are necessary conditions only: \"no known obstacle\" is not a pass;          `bpfcompat test` without --predict-only boots each kernel to find out.\n"
}
