//! Running a check across a matrix: fetch each kernel, boot it with the
//! generated initramfs, judge the result, and assemble the report.
//!
//! One kernel's failure, of any kind, becomes that kernel's verdict; only
//! problems that make every boot pointless (no QEMU, no agent, unreadable
//! inputs) abort the run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use thiserror::Error;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::arch::Arch;
use crate::boot::initramfs;
use crate::boot::qemu::{self, AccelChoice, BootRecord, BootSpec, Ending, Job, Qemu, Start};
use crate::boot::snapshot::{self, Lookup, SnapshotKey, Snapshots};
use crate::kernel::{self, KernelCache, Mirror, ModuleWant, ResolvedKernel};
use crate::matrix::{KernelSpec, Matrix};
use crate::predict::{self, KernelSource, Subject};
use crate::report::{
    self, prediction::Prediction, Accel, AccelUse, Check, CheckArtifact, CheckStatus, ClassCode,
    Classification, JobChannel, KernelInfo, MatrixRef, ModuleFacts, Report, Summary, Target,
    TargetStatus, Timing,
};
use crate::run::check::{self, Prepared};
use crate::run::modules;
use crate::run::verdict::{self, Expectation};
use crate::term::progress::Progress;
use bpfcompat_proto::object::FeatureProbe;

pub const DEFAULT_MEMORY_MB: u32 = 512;
pub const DEFAULT_CPUS: u32 = 1;
/// What one QEMU costs beyond its guest's RAM (its own code, the TCG
/// translation cache, device state), counted against the memory budget.
pub const QEMU_OVERHEAD_MB: u64 = 150;
/// Memory left to the rest of the host when the budget is derived from
/// MemAvailable.
const HOST_RESERVE_MB: u64 = 1024;
/// A kernel prints on its console within a second of starting, even under
/// TCG; a KVM guest silent this long is not being run.
const KVM_SILENCE_LIMIT: Duration = Duration::from_secs(10);
/// The largest job sent to a restored guest. It travels as a fw_cfg file
/// read by DMA (memory speed), so this bounds what the guest holds, not the
/// time; a larger job boots with it in the initramfs (docs/snapshots.md).
pub const MAX_SNAPSHOT_JOB_BYTES: usize = 32 << 20;

pub struct Settings {
    pub concurrency: usize,
    /// Megabytes of guest memory (plus [`QEMU_OVERHEAD_MB`] each) that may be
    /// in use at once; guests wait for their share instead of starting to die.
    pub memory_budget_mb: u64,
    pub timeout: Duration,
    pub accel: AccelChoice,
    /// Restore kernels from snapshots where the job is small enough.
    pub snapshots: bool,
    pub cache_dir: PathBuf,
    pub workdir: PathBuf,
    /// Tried before each kernel's origin.
    pub mirror: Option<Mirror>,
}

#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Qemu(#[from] qemu::QemuError),
    #[error(transparent)]
    Guest(#[from] initramfs::GuestError),
    #[error(transparent)]
    Snapshot(#[from] snapshot::SnapshotError),
    #[error(
        "the matrix has {arch} kernels, but no {arch} build of the --artifact paths with \
         `{{arch}}` exists (`{{arch}}` is `{}` there): build one, or leave the {arch} \
         kernels out",
        arch.target_word()
    )]
    NoBuildFor { arch: Arch },
    #[error("{what} {path}: {err}")]
    Io {
        what: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> EngineError {
    let path = path.to_owned();
    move |err| EngineError::Io { what, path, err }
}

pub async fn run(
    matrix: &Matrix,
    check: &Prepared,
    settings: &Settings,
) -> Result<Report, EngineError> {
    let started = Instant::now();
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let run_dir = settings.workdir.join("runs").join(format!(
        "{}-{}",
        started_at.replace([':', '-'], ""),
        std::process::id()
    ));
    let mut platforms = BTreeMap::new();
    for arch in matrix
        .kernels
        .iter()
        .map(|k| k.arch)
        .collect::<BTreeSet<_>>()
    {
        let qemu = Qemu::detect(
            arch,
            settings.accel,
            &settings.cache_dir.join(qemu::ACCEL_STATE_FILE),
        )?;
        if settings.accel != AccelChoice::Tcg && qemu.accel.accel == Accel::Tcg {
            eprintln!("bpfcompat: {}", qemu.accel.reason);
        }
        let (payload, artifacts) = for_arch(check, arch)?;
        let guest = write_initramfs(&run_dir, &payload, arch)?;
        let subjects = check::subjects(&payload, &artifacts);
        platforms.insert(
            arch,
            Platform::new(qemu, guest, (artifacts, subjects), check, settings),
        );
    }
    // sockaddr_un paths are limited to 108 bytes, so the result sockets live
    // in a short temporary directory rather than the run directory.
    let sockets = tempfile::Builder::new()
        .prefix("bpfcompat-")
        .tempdir()
        .map_err(io_err(
            "cannot create socket directory",
            &std::env::temp_dir(),
        ))?;
    let ctx = Arc::new(Context::new(
        matrix,
        check,
        settings,
        platforms,
        run_dir,
        sockets.path(),
    ));
    let targets = check_every_kernel(&ctx, matrix).await;
    let libbpf_version = targets
        .iter()
        .flat_map(|t| &t.checks)
        .find_map(|c| c.validation.object.as_ref())
        .map(|o| o.libbpf_version.clone());
    Ok(Report {
        schema: report::SCHEMA.to_owned(),
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        mode: check.mode,
        artifact: check.identity.clone(),
        matrix: MatrixRef {
            name: matrix.name.clone(),
            digest: matrix.digest.clone(),
            path: matrix.path.display().to_string(),
        },
        // The caller knows whether it restricted the matrix to a shard.
        shard: None,
        accel: ctx.main_platform().current_accel().accel,
        qemu_version: ctx.main_platform().qemu.version.clone(),
        libbpf_version,
        started_at,
        duration_ms: started.elapsed().as_millis() as u64,
        summary: Summary::of(&targets),
        targets,
    })
}

/// What the kernels of `arch` check: the objects for every kernel and the
/// builds for `arch` of `{arch}` paths, with their artifacts in the same
/// order.
fn for_arch(
    check: &Prepared,
    arch: Arch,
) -> Result<(initramfs::Payload, Vec<CheckArtifact>), EngineError> {
    let initramfs::Payload::Objects(objects) = &check.payload else {
        return Ok((check.payload.clone(), check.artifacts.clone()));
    };
    let per_arch = objects.iter().any(|o| o.arch.is_some());
    if per_arch && !objects.iter().any(|o| o.arch == Some(arch)) {
        return Err(EngineError::NoBuildFor { arch });
    }
    let (objects, artifacts) = objects
        .iter()
        .zip(&check.artifacts)
        .filter(|(o, _)| o.arch.is_none_or(|a| a == arch))
        .map(|(o, a)| (o.clone(), a.clone()))
        .unzip();
    Ok((initramfs::Payload::Objects(objects), artifacts))
}

/// The initramfs every kernel of one architecture boots, in the run
/// directory: the full one, and the base a snapshot boots in wait mode.
struct Guest {
    initrd: PathBuf,
    base: PathBuf,
    base_sha256: String,
    job: Vec<u8>,
}

fn write_initramfs(
    run_dir: &Path,
    payload: &initramfs::Payload,
    arch: Arch,
) -> Result<Guest, EngineError> {
    std::fs::create_dir_all(run_dir).map_err(io_err("cannot create run directory", run_dir))?;
    let initramfs = initramfs::build(&initramfs::Userland::locate(arch)?, payload)?;
    // The host's architecture keeps the plain names.
    let suffix = if arch == Arch::host() {
        String::new()
    } else {
        format!("-{arch}")
    };
    let initrd = run_dir.join(format!("initramfs{suffix}.cpio"));
    let base = run_dir.join(format!("base{suffix}.cpio"));
    for (path, bytes) in [(&initrd, &initramfs.full), (&base, &initramfs.base)] {
        if let Err(err) = std::fs::write(path, bytes) {
            // A half-written initramfs on a full disk would keep the space.
            let _ = std::fs::remove_dir_all(run_dir);
            return Err(io_err("cannot write initramfs", path)(err));
        }
    }
    Ok(Guest {
        initrd,
        base,
        base_sha256: bpfcompat_proto::job::digest(&initramfs.base),
        job: initramfs.job,
    })
}

/// Every kernel of `matrix`, in parallel (bounded by the context's slots
/// and memory), its target in the matrix's order.
async fn check_every_kernel(ctx: &Arc<Context>, matrix: &Matrix) -> Vec<Target> {
    // A JoinSet aborts its tasks when dropped, so an interrupted run takes
    // every QEMU down with it (each child is kill_on_drop).
    let mut tasks = tokio::task::JoinSet::new();
    for (index, spec) in matrix.kernels.iter().cloned().enumerate() {
        let ctx = ctx.clone();
        tasks.spawn(async move { (index, ctx.check_kernel(index, &spec).await) });
    }
    let mut slots: Vec<Option<Target>> = (0..matrix.kernels.len()).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (index, target) = joined.expect("kernel task does not panic");
        slots[index] = Some(target);
    }
    slots.into_iter().flatten().collect()
}

struct Context {
    /// One per architecture of the matrix's kernels.
    platforms: BTreeMap<Arch, Platform>,
    cache: KernelCache,
    mirror: Option<Mirror>,
    run_dir: PathBuf,
    sockets: PathBuf,
    default_timeout: Duration,
    expected_exit: i32,
    /// What every guest loads first; each kernel's `modules:` adds more.
    module_wants: Vec<ModuleWant>,
    progress: Progress,
    slots: Semaphore,
    memory_budget_mb: u64,
    /// One permit per megabyte of [`Context::memory_budget_mb`].
    memory: Semaphore,
}

/// What the guests of one architecture boot with.
struct Platform {
    qemu: Qemu,
    /// The accelerator new boots use: the detected one, until a KVM guest
    /// turns out silent and the rest of the run falls back to TCG.
    accel: std::sync::Mutex<AccelUse>,
    initrd: PathBuf,
    /// How kernels are restored from snapshots; `None` with `--snapshots off`.
    waiting: Option<Waiting>,
    /// What each check of these kernels' guests is, in request order.
    artifacts: Vec<CheckArtifact>,
    /// What the preflight predicts for, artifact by artifact (`None` for
    /// what is not an object).
    subjects: Arc<Vec<Option<Subject>>>,
}

/// What restoring from snapshots needs: the wait-mode initramfs every
/// snapshot of this kind boots, and the job each restored guest is sent.
struct Waiting {
    kind: &'static str,
    base: PathBuf,
    base_sha256: String,
    job: Vec<u8>,
    store: Snapshots,
    /// A refused restore is said once a run.
    refusal_said: std::sync::Once,
}

/// How a kernel's guest got going, for its target.
#[derive(Default)]
struct Restore {
    restored: bool,
    restore_ms: Option<u64>,
    /// The snapshot restored from, or saved by this run.
    snapshot_bytes: Option<u64>,
    /// How the job got in.
    channel: Option<JobChannel>,
}

/// What a restore came to.
enum Tried {
    Restored(Box<(BootRecord, Restore)>),
    /// No snapshot for the key, or a stale one: what differed.
    Absent(Option<String>),
    /// QEMU would not load it.
    Refused,
}

impl Platform {
    fn new(
        qemu: Qemu,
        guest: Guest,
        (artifacts, subjects): (Vec<CheckArtifact>, Vec<Option<Subject>>),
        check: &Prepared,
        settings: &Settings,
    ) -> Platform {
        Platform {
            accel: std::sync::Mutex::new(qemu.accel.clone()),
            qemu,
            initrd: guest.initrd,
            subjects: Arc::new(subjects),
            artifacts,
            waiting: settings.snapshots.then(|| Waiting {
                kind: match check.payload {
                    initramfs::Payload::Command(_) => "command",
                    initramfs::Payload::Objects(_) => "objects",
                },
                base_sha256: guest.base_sha256,
                base: guest.base,
                job: guest.job,
                store: Snapshots::new(KernelCache::new(settings.cache_dir.clone())),
                refusal_said: std::sync::Once::new(),
            }),
        }
    }

    fn current_accel(&self) -> AccelUse {
        self.accel.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A KVM guest stayed silent: every boot from now on uses TCG, and so do
    /// later runs in this boot of the host. Said once, by the first kernel
    /// that finds out.
    fn fall_back_to_tcg(&self, kernel: &str) -> AccelUse {
        let mut accel = self.accel.lock().unwrap_or_else(|e| e.into_inner());
        if accel.accel == Accel::Kvm {
            let why = format!(
                "the KVM guest of {kernel} printed nothing in {} s (a TCG boot prints within \
                 a second)",
                KVM_SILENCE_LIMIT.as_secs()
            );
            self.qemu.remember_silent(&why);
            *accel = AccelUse {
                accel: Accel::Tcg,
                reason: format!("{why}: using TCG"),
            };
            eprintln!("bpfcompat: {}", accel.reason);
        }
        accel.clone()
    }

    /// The initramfs of a plain boot: the shared one, or a copy of it with
    /// the kernel's modules appended.
    fn initrd_with(&self, modules: Option<&[u8]>, kernel_dir: &Path) -> Result<PathBuf, Infra> {
        let Some(modules) = modules else {
            return Ok(self.initrd.clone());
        };
        let path = kernel_dir.join("initramfs.cpio");
        let write = || -> std::io::Result<()> {
            std::fs::copy(&self.initrd, &path)?;
            let mut file = std::fs::OpenOptions::new().append(true).open(&path)?;
            std::io::Write::write_all(&mut file, modules)
        };
        write().map_err(|e| Infra {
            reason: format!("cannot write {}: {e}", path.display()),
            hint: "This is a problem on the host (disk space?).",
        })?;
        Ok(path)
    }

    /// Runs `attempt` under the current accelerator; a KVM guest that stays
    /// silent moves the run to TCG and the kernel is tried again.
    async fn until_it_runs<'b, F, Fut>(
        &self,
        mut boot: BootSpec<'b>,
        mut attempt: F,
    ) -> Result<(BootRecord, AccelUse, Restore), Infra>
    where
        F: FnMut(BootSpec<'b>) -> Fut,
        Fut: std::future::Future<Output = Result<(BootRecord, Restore), Infra>>,
    {
        let mut accel = self.current_accel();
        loop {
            boot.accel = accel.accel;
            boot.silence_limit = (accel.accel == Accel::Kvm).then_some(KVM_SILENCE_LIMIT);
            let (record, restore) = attempt(boot).await?;
            if record.ending == Ending::Silent && accel.accel == Accel::Kvm {
                accel = self.fall_back_to_tcg(boot.label);
                continue;
            }
            return Ok((record, accel, restore));
        }
    }

    async fn boot_once(&self, boot: &BootSpec<'_>) -> Result<BootRecord, Infra> {
        qemu::boot(&self.qemu, boot).await.map_err(Infra::host)
    }
}

impl Context {
    fn new(
        matrix: &Matrix,
        check: &Prepared,
        settings: &Settings,
        platforms: BTreeMap<Arch, Platform>,
        run_dir: PathBuf,
        sockets: &Path,
    ) -> Context {
        Context {
            platforms,
            cache: KernelCache::new(settings.cache_dir.clone()),
            mirror: settings.mirror.clone(),
            run_dir,
            sockets: sockets.to_owned(),
            default_timeout: settings.timeout,
            expected_exit: check.expected_exit,
            module_wants: check.module_wants.clone(),
            progress: Progress::new(matrix.kernels.iter().map(|k| k.id.clone()).collect()),
            slots: Semaphore::new(settings.concurrency.max(1)),
            memory_budget_mb: settings.memory_budget_mb,
            memory: Semaphore::new(settings.memory_budget_mb.min(u64::from(u32::MAX)) as usize),
        }
    }

    fn fetch_options(&self, index: usize, spec: &KernelSpec) -> kernel::Options {
        kernel::Options {
            mirror: self.mirror.clone(),
            progress: self.progress.download(index),
            arch: spec.arch,
            ..kernel::Options::default()
        }
    }

    /// The platform the run's report names: the host's architecture's,
    /// or the first there is.
    fn main_platform(&self) -> &Platform {
        self.platforms
            .get(&Arch::host())
            .or_else(|| self.platforms.values().next())
            .expect("a matrix has kernels")
    }

    /// One kernel, start to verdict: whatever goes wrong becomes its
    /// target's verdict, never the run's.
    async fn check_kernel(&self, index: usize, spec: &KernelSpec) -> Target {
        let started = Instant::now();
        let kernel_dir = self.run_dir.join(&spec.id);
        let mut target = Target {
            id: spec.id.clone(),
            required: spec.required,
            status: TargetStatus::InfraError,
            kernel: KernelInfo {
                release: None,
                arch: Some(spec.arch.to_string()),
                btf: None,
                source: spec.source.describe(),
                sha256: None,
                bpf: None,
                probes: Vec::new(),
                modules: None,
                memory: None,
            },
            classification: None,
            timing_ms: Timing::default(),
            console_log: kernel_dir.join("console.log").display().to_string(),
            accel: None,
            restored: false,
            restore_ms: None,
            snapshot_bytes: None,
            job_channel: None,
            console_tail: None,
            checks: Vec::new(),
        };
        if let Err(Infra { reason, hint }) = self.boot_and_judge(index, spec, &mut target).await {
            target.classification = Some(Classification {
                code: ClassCode::InfraError,
                reason,
                hint: hint.to_owned(),
                phase: None,
                other_classes: 0,
            });
            target.timing_ms.total = started.elapsed().as_millis() as u64;
        }
        self.progress.done(index, &target);
        target
    }

    async fn boot_and_judge(
        &self,
        index: usize,
        spec: &KernelSpec,
        target: &mut Target,
    ) -> Result<(), Infra> {
        let kernel = self.fetch(index, spec).await?;
        target.kernel.sha256 = Some(kernel.sha256.clone());
        let preflight = self.preflight(spec, &kernel);
        let kernel_dir = self.run_dir.join(&spec.id);
        std::fs::create_dir_all(&kernel_dir).map_err(|e| Infra {
            reason: format!("cannot create {}: {e}", kernel_dir.display()),
            hint: "",
        })?;
        let modules = self.modules_for(index, spec, &kernel, target).await;
        let platform = &self.platforms[&spec.arch];
        let memory_mb = spec.memory_mb.unwrap_or(DEFAULT_MEMORY_MB);
        let _admitted = self.admit(memory_mb).await?;
        self.progress.phase(index, "booting");
        let timeout = spec.timeout.unwrap_or(self.default_timeout);
        let boot = BootSpec {
            label: &spec.id,
            kernel: &kernel.image,
            initrd: &platform.initrd,
            // Set per attempt by until_it_runs.
            accel: Accel::Tcg,
            silence_limit: None,
            memory_mb,
            cpus: spec.cpus.unwrap_or(DEFAULT_CPUS),
            cmdline_extra: spec.cmdline.as_deref(),
            timeout,
            console_log: Path::new(&target.console_log),
            result_socket: &self.sockets.join(format!("{index}.sock")),
            start: Start::Boot,
        };
        let (record, accel, restore) = platform
            .start_guest(boot, &kernel.sha256, modules, &kernel_dir)
            .await?;
        target.accel = Some(accel);
        target.restored = restore.restored;
        target.restore_ms = restore.restore_ms;
        target.snapshot_bytes = restore.snapshot_bytes;
        target.job_channel = restore.channel;
        let expect = Expectation {
            expected_exit: self.expected_exit,
            artifacts: &platform.artifacts,
            memory_mb,
        };
        apply(
            target,
            verdict::judge(&record, timeout, &expect),
            record,
            &kernel_dir,
        );
        if let Ok(predictions) = preflight.await {
            lead_with_predictions(&mut target.checks, predictions);
        }
        Ok(())
    }

    /// The preflight of this kernel's platform's objects, on a blocking
    /// thread while the kernel boots. What keeps it from predicting is
    /// said, and never fails the kernel.
    fn preflight(
        &self,
        spec: &KernelSpec,
        kernel: &ResolvedKernel,
    ) -> tokio::task::JoinHandle<Vec<Option<Prediction>>> {
        let subjects = self.platforms[&spec.arch].subjects.clone();
        let (cache, kernel, id) = (self.cache.clone(), kernel.clone(), spec.id.clone());
        let more_modules = spec.modules.source.is_some();
        let config = spec.config.clone();
        tokio::task::spawn_blocking(move || {
            if subjects.iter().all(Option::is_none) {
                return Vec::new();
            }
            let predicted = KernelSource::read(&cache, &kernel, more_modules, config.as_deref())
                .and_then(|k| Ok(predict::predict_all(&subjects, &k.facts()?)));
            predicted.unwrap_or_else(|e| {
                eprintln!("bpfcompat: {id}: no preflight: {e}");
                Vec::new()
            })
        })
    }

    async fn fetch(&self, index: usize, spec: &KernelSpec) -> Result<ResolvedKernel, Infra> {
        self.progress.phase(index, "fetching kernel");
        let cache = self.cache.clone();
        let source = spec.source.clone();
        let opts = self.fetch_options(index, spec);
        tokio::task::spawn_blocking(move || kernel::resolve(&cache, &source, &opts))
            .await
            .expect("kernel resolution does not panic")
            .map_err(|e| Infra {
                reason: e.to_string(),
                hint: "Fix the kernel's `source:` in the matrix, or make it `required: false`.",
            })
    }

    /// The archive of the modules this kernel's check needs, if any: the
    /// kernel's module tree read, the closure planned. Sets the kernel's
    /// module facts.
    async fn modules_for(
        &self,
        index: usize,
        spec: &KernelSpec,
        kernel: &ResolvedKernel,
        target: &mut Target,
    ) -> Option<Vec<u8>> {
        let mut wants = self.module_wants.clone();
        wants.extend(modules::named_wants(
            &spec.modules.load,
            "the matrix's modules: for this kernel",
        ));
        let wants = modules::dedup(wants);
        if wants.is_empty() {
            return None;
        }
        self.progress.phase(index, "reading modules");
        let cache = self.cache.clone();
        let opts = self.fetch_options(index, spec);
        let (own, source) = (kernel.modules.clone(), spec.modules.source.clone());
        let (shipped, facts) = tokio::task::spawn_blocking(move || {
            ship_modules(&cache, own.as_deref(), source.as_ref(), &opts, &wants)
        })
        .await
        .expect("reading modules does not panic");
        target.kernel.modules = Some(facts);
        (!shipped.is_empty()).then(|| initramfs::modules_archive(shipped))
    }

    /// Waits for this guest's share of the memory budget, then for a slot.
    async fn admit(
        &self,
        memory_mb: u32,
    ) -> Result<(SemaphorePermit<'_>, SemaphorePermit<'_>), Infra> {
        let cost = u64::from(memory_mb) + QEMU_OVERHEAD_MB;
        if cost > self.memory_budget_mb {
            return Err(Infra {
                reason: format!(
                    "this kernel needs {cost} MB ({memory_mb} MB of guest memory plus \
                     {QEMU_OVERHEAD_MB} MB for QEMU) but the memory budget is {} MB",
                    self.memory_budget_mb
                ),
                hint: "Lower the kernel's `memory_mb:` in the matrix, or raise --memory-budget if \
                       the host really has the memory.",
            });
        }
        let closed = "semaphore is never closed";
        let memory = self.memory.acquire_many(cost as u32).await.expect(closed);
        let slot = self.slots.acquire().await.expect(closed);
        Ok((memory, slot))
    }
}

/// Restoring and saving snapshots of one architecture's guests.
impl Platform {
    /// Restores the kernel from its snapshot (made now if there is none)
    /// when snapshots are on and the job is small enough to send; boots it
    /// with everything in its initramfs otherwise, or when the restored
    /// guest did not take its job.
    async fn start_guest(
        &self,
        boot: BootSpec<'_>,
        kernel_sha256: &str,
        modules: Option<Vec<u8>>,
        kernel_dir: &Path,
    ) -> Result<(BootRecord, AccelUse, Restore), Infra> {
        let modules = modules.unwrap_or_default();
        if let Some(waiting) = &self.waiting {
            let job = [&waiting.job[..], &modules[..]].concat();
            if job.len() <= MAX_SNAPSHOT_JOB_BYTES {
                let file = kernel_dir.join("job.cpio");
                let job = Job {
                    archive: &job,
                    // Without the file, the job goes over the result port.
                    fw_cfg: std::fs::write(&file, &job).is_ok().then_some(&file),
                };
                let started = self.restored(boot, waiting, kernel_sha256, job).await?;
                match started.0.job.as_ref().and_then(|j| j.failed.as_ref()) {
                    None => return Ok(started),
                    Some(why) => eprintln!(
                        "bpfcompat: the guest of {} did not take its job ({why}): booting it \
                         with the job in its initramfs instead",
                        boot.label
                    ),
                }
            }
        }
        let initrd = self.initrd_with((!modules.is_empty()).then_some(&modules), kernel_dir)?;
        let boot = BootSpec {
            initrd: &initrd,
            ..boot
        };
        self.until_it_runs(boot, |boot| async move {
            Ok((self.boot_once(&boot).await?, Restore::default()))
        })
        .await
    }

    /// The check on a guest restored from the kernel's snapshot, or on the
    /// guest whose snapshot is being made.
    async fn restored(
        &self,
        boot: BootSpec<'_>,
        waiting: &Waiting,
        kernel_sha256: &str,
        job: Job<'_>,
    ) -> Result<(BootRecord, AccelUse, Restore), Infra> {
        let boot = BootSpec {
            initrd: &waiting.base,
            ..boot
        };
        let (record, accel, mut restore) = self
            .until_it_runs(boot, |boot| {
                let key = waiting.key(kernel_sha256, &self.qemu, &boot);
                async move { self.restore_or_save(boot, waiting, &key, job).await }
            })
            .await?;
        restore.channel = record.job.as_ref().and_then(|j| j.channel);
        Ok((record, accel, restore))
    }

    /// Restores the snapshot of `key`; where there is none, or QEMU refuses
    /// it, boots in wait mode, saves the guest as the new snapshot (under
    /// the slot's lock, so two runs make one) and sends it the job.
    async fn restore_or_save(
        &self,
        boot: BootSpec<'_>,
        waiting: &Waiting,
        key: &SnapshotKey,
        job: Job<'_>,
    ) -> Result<(BootRecord, Restore), Infra> {
        let (refused, stale) = match self.restore(boot, waiting, key, job).await? {
            Tried::Restored(done) => return Ok(*done),
            Tried::Refused => (true, None),
            Tried::Absent(stale) => (false, stale),
        };
        let _lock = {
            let (store, key) = (waiting.store.clone(), key.clone());
            tokio::task::spawn_blocking(move || store.lock(&key))
                .await
                .expect("locking does not panic")
                .map_err(Infra::host)?
        };
        // Whoever held the lock may just have made it.
        if !refused && matches!(waiting.store.lookup(key), Lookup::Ready(_)) {
            if let Tried::Restored(done) = self.restore(boot, waiting, key, job).await? {
                return Ok(*done);
            }
        }
        let state = waiting.store.temp_file().map_err(Infra::host)?;
        let start = Start::Wait { job, save: &state };
        let record = self.boot_once(&BootSpec { start, ..boot }).await?;
        let mut saved = Restore::default();
        match record.job.as_ref().and_then(|j| j.saved.clone()) {
            Some(Ok(())) => match waiting.store.install(key, state) {
                Ok(bytes) => {
                    saved.snapshot_bytes = Some(bytes);
                    if let Some(changes) = stale {
                        eprintln!(
                            "bpfcompat: replaced the snapshot of {}: it was saved with {changes}",
                            boot.label
                        );
                    }
                }
                Err(e) => eprintln!(
                    "bpfcompat: the snapshot of {} was not kept: {e}",
                    boot.label
                ),
            },
            Some(Err(why)) => eprintln!("bpfcompat: no snapshot of {}: {why}", boot.label),
            None => {}
        }
        Ok((record, saved))
    }

    /// The check on a restored guest, if the cache has a snapshot for `key`
    /// and QEMU accepts it.
    async fn restore(
        &self,
        boot: BootSpec<'_>,
        waiting: &Waiting,
        key: &SnapshotKey,
        job: Job<'_>,
    ) -> Result<Tried, Infra> {
        let from = match waiting.store.lookup(key) {
            Lookup::Ready(from) => from,
            Lookup::Missing => return Ok(Tried::Absent(None)),
            // Said once it is replaced: a KVM guest found silent is booted
            // again under TCG, whose snapshot may be the one in the slot.
            Lookup::Stale(changes) => return Ok(Tried::Absent(Some(changes))),
        };
        let start = Start::Restore { from: &from, job };
        let spec = BootSpec {
            start,
            // A restored guest has nothing more to say on its console.
            silence_limit: None,
            ..boot
        };
        let record = self.boot_once(&spec).await?;
        let job = record.job.clone().unwrap_or_default();
        let Some(after) = job.restored_after else {
            let why = job.failed.unwrap_or_default();
            let qemu = record
                .qemu_stderr
                .lines()
                .last()
                .unwrap_or_default()
                .to_owned();
            waiting.refusal_said.call_once(|| {
                eprintln!(
                    "bpfcompat: QEMU refused the snapshot of {} ({why}{}{qemu}): booting instead \
                     and replacing the snapshot",
                    boot.label,
                    if qemu.is_empty() { "" } else { ": " },
                )
            });
            return Ok(Tried::Refused);
        };
        let restore = Restore {
            restored: true,
            restore_ms: Some(after.as_millis() as u64),
            snapshot_bytes: std::fs::metadata(&from).ok().map(|m| m.len()),
            channel: None,
        };
        Ok(Tried::Restored(Box::new((record, restore))))
    }
}

impl Waiting {
    fn key(&self, kernel_sha256: &str, qemu: &Qemu, boot: &BootSpec<'_>) -> SnapshotKey {
        SnapshotKey {
            kernel_sha256: kernel_sha256.to_owned(),
            kind: self.kind.to_owned(),
            initramfs_sha256: self.base_sha256.clone(),
            qemu_version: qemu.version.clone(),
            accel: boot.accel,
            cpu: snapshot::cpu_of(boot.accel),
            memory_mb: boot.memory_mb,
            cpus: boot.cpus,
            cmdline: qemu::kernel_cmdline(qemu.arch, boot.cmdline_extra, true),
        }
    }
}

/// The modules `wants` asks for, read from the kernel's own module tree
/// `own` or from its `modules:` source, in load order, and the facts so far.
/// Nothing here fails the kernel: a tree that cannot be had is a fact.
fn ship_modules(
    cache: &KernelCache,
    own: Option<&str>,
    source: Option<&kernel::Source>,
    opts: &kernel::Options,
    wants: &[ModuleWant],
) -> (Vec<initramfs::GuestModule>, ModuleFacts) {
    let tree = match (source, own) {
        (Some(source), _) => kernel::resolve_modules(cache, source, opts)
            .map(|t| Some((t, format!("modules: {}", source.describe())))),
        (None, Some(id)) => kernel::open_modules(cache, id)
            .map(|t| t.map(|t| (t, "the kernel's package or image".to_owned()))),
        (None, None) => Ok(None),
    };
    let tree = match tree {
        Ok(tree) => tree,
        Err(e) => {
            let (_, facts) = modules::plan(None, wants);
            let mut facts = facts.unwrap_or_default();
            facts.note = Some(format!("the module tree could not be read: {e}"));
            return (Vec::new(), facts);
        }
    };
    let (load, facts) = modules::plan(tree.as_ref().map(|(t, o)| (t, o.as_str())), wants);
    let mut facts = facts.unwrap_or_default();
    let Some((tree, _)) = tree else {
        return (Vec::new(), facts);
    };
    let mut shipped = Vec::with_capacity(load.len());
    for (module, why) in load {
        match tree.read(&module) {
            Ok(object) => shipped.push(initramfs::GuestModule {
                name: module.name,
                why,
                object,
            }),
            Err(e) => facts.failed.push(modules::fact(
                &module.name,
                &why,
                Some(&format!("not shipped: {e}")),
            )),
        }
    }
    (shipped, facts)
}

/// Why a kernel has no verdict of its own, and what to do about it.
struct Infra {
    reason: String,
    hint: &'static str,
}

impl Infra {
    fn host(e: impl std::fmt::Display) -> Infra {
        Infra {
            reason: e.to_string(),
            hint: "This is a problem on the host.",
        }
    }
}

/// Puts a boot's verdict on its target; full verifier logs go to files.
fn apply(target: &mut Target, mut v: verdict::Verdict, record: BootRecord, kernel_dir: &Path) {
    if let Some(kernel) = v.kernel.take() {
        target.kernel.release = Some(kernel.release);
        // `uname -m` (aarch64) in the matrix's words (arm64).
        target.kernel.arch = Some(Arch::parse(&kernel.arch).map_or(kernel.arch, |a| a.to_string()));
        target.kernel.btf = Some(kernel.btf);
        target.kernel.bpf = kernel.bpf;
        target.kernel.memory = kernel.memory;
        if let Some(facts) = target.kernel.modules.as_mut() {
            modules::add_results(facts, &kernel.modules);
        }
    }
    save_logs(kernel_dir, &mut v.checks);
    target.kernel.probes = kernel_probes(&mut v.checks);
    if v.status == TargetStatus::InfraError {
        target.console_tail = Some(record.console_tail);
    }
    target.status = v.status;
    target.classification = v.classification;
    target.checks = v.checks;
    target.timing_ms = v.timing;
}

/// Each check gets its prediction; a failure that was predicted leads its
/// hint with the first obstacle found.
fn lead_with_predictions(checks: &mut [Check], predictions: Vec<Option<Prediction>>) {
    for (check, prediction) in checks.iter_mut().zip(predictions) {
        let Some(p) = prediction else { continue };
        if check.status == CheckStatus::Fail {
            if let (Some(c), Some(first)) = (check.classification.as_mut(), p.obstacles.first()) {
                c.hint = format!("Predicted before booting: {}. {}", first.reason, c.hint);
            }
        }
        check.prediction = Some(p);
    }
}

/// The objects' feature probes, once each, for the kernel's facts; each
/// object keeps those that did not come back supported (what explains its
/// failures). A hundred objects repeat the same few probes a hundred times.
fn kernel_probes(checks: &mut [Check]) -> Vec<FeatureProbe> {
    let mut all: Vec<FeatureProbe> = Vec::new();
    for object in checks
        .iter_mut()
        .filter_map(|c| c.validation.object.as_mut())
    {
        for probe in &object.probes {
            let same = |p: &&FeatureProbe| {
                p.kind == probe.kind && p.name == probe.name && p.prog_type == probe.prog_type
            };
            if !all.iter().any(|p| same(&p)) {
                all.push(probe.clone());
            }
        }
        object.probes.retain(|p| p.supported != Some(true));
    }
    all
}

/// Moves what runs to megabytes out of the report into files in the
/// kernel's run directory: each program's full verifier log
/// (`<n>-<object>.<program>.verifier.log`; the report keeps the 8 KiB tail)
/// and each object's libbpf messages beyond the last 4 KiB
/// (`<n>-<object>.libbpf.log`). Numbered: two objects may share a name.
fn save_logs(kernel_dir: &Path, checks: &mut [Check]) {
    let write = |name: String, log: &str| {
        let path = kernel_dir.join(name);
        match std::fs::write(&path, log) {
            Ok(()) => path.display().to_string(),
            Err(e) => format!("(not written: {}: {e})", path.display()),
        }
    };
    for (i, check) in checks.iter_mut().enumerate() {
        let validation = &mut check.validation;
        let Some(object) = validation.object.as_mut() else {
            continue;
        };
        for prog in &mut object.programs {
            let log = std::mem::take(&mut prog.load.verifier_log);
            if !log.is_empty() {
                let name = format!("{i}-{}.{}.verifier.log", check.artifact.name, prog.name);
                prog.load.verifier_log_file = Some(write(name, &log));
            }
        }
        if object.libbpf_log.len() > report::LIBBPF_LOG_TAIL_BYTES {
            let name = format!("{i}-{}.libbpf.log", check.artifact.name);
            validation.libbpf_log_file = Some(write(name, &object.libbpf_log));
            object.libbpf_log =
                bpfcompat_proto::object::tail(&object.libbpf_log, report::LIBBPF_LOG_TAIL_BYTES)
                    .to_owned();
        }
    }
}

/// What the machine can run at once: one guest per core, bounded by memory.
pub fn default_concurrency() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_guest = u64::from(DEFAULT_MEMORY_MB) + QEMU_OVERHEAD_MB;
    let by_memory = (default_memory_budget_mb() / per_guest).max(1) as usize;
    cores.min(by_memory).max(1)
}

/// The memory guests may use at once: MemAvailable less a reserve for the
/// rest of the host (or one default guest's worth, if /proc/meminfo says
/// nothing).
pub fn default_memory_budget_mb() -> u64 {
    let available_mb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024);
    let one_guest = u64::from(DEFAULT_MEMORY_MB) + QEMU_OVERHEAD_MB;
    available_mb.map_or(one_guest, |mb| {
        mb.saturating_sub(HOST_RESERVE_MB).max(one_guest)
    })
}
