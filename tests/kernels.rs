//! End-to-end: every kind of kernel source, fetched from servers on
//! 127.0.0.1 (an OCI registry with the token flow, an HTTP server for
//! packages, a stand-in apt-get), pinned by the lock file and booted for real
//! by `bpfcompat test-command`; and the `kernels` commands on a real cache.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use bpfcompat_testkit::http::{Plan, TestServer};
use bpfcompat_testkit::oci::{oci_registry, Registry};
use bpfcompat_testkit::packages::{build_deb, build_rpm, TarEntry};
use bpfcompat_testkit::sha256_hex;
use common::{kernels_dir, Run, Running, Scratch, K61_DEB, K72, MODULES_72, TINY};

/// The servers and files behind a matrix with one kernel of each source kind,
/// all of them the tiny 6.1 kernel (the fastest to boot).
struct Sources {
    registry: Registry,
    rpm_server: TestServer,
    apt_get: PathBuf,
    apt_calls: PathBuf,
    matrix: PathBuf,
}

fn tiny() -> Vec<u8> {
    std::fs::read(kernels_dir().join(TINY.file)).unwrap()
}

/// Write a stand-in `apt-get` that drops `deb` into the current directory
/// for `download PACKAGE=VERSION`, counting its calls.
fn fake_apt_get(s: &Scratch, deb: &[u8], wanted: &str) -> (PathBuf, PathBuf) {
    let deb_path = s.path("prebuilt.deb");
    std::fs::write(&deb_path, deb).unwrap();
    let calls = s.path("apt-calls");
    let script = s.write(
        "apt-get",
        &format!(
            "#!/bin/sh\n[ \"$1 $2\" = 'download {wanted}' ] || {{ echo \"E: Version '$2' not found\" >&2; exit 100; }}\necho \"$*\" >> {calls}\nname=$(echo \"$2\" | tr = _)\ncp {deb} \"./${{name}}_amd64.deb\"\n",
            calls = calls.display(),
            deb = deb_path.display()
        ),
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (script, calls)
}

fn all_sources(s: &Scratch) -> Sources {
    let kernel = tiny();
    let registry = oci_registry("cilium/ci-kernels", "6.1", &kernel, ".zst");
    // An RHEL-style package: the image under lib/modules, zstd payload.
    let rpm = build_rpm(
        ".zst",
        &[
            ("./lib/modules/6.1.192/vmlinuz", &kernel[..]),
            ("./lib/modules/6.1.192/config", b"CONFIG_BPF=y\n"),
        ],
    );
    let rpm_server = TestServer::start(rpm, Plan::default());
    // A SUSE-style local package with two images: kernel_path picks one.
    let two = build_rpm(
        ".gz",
        &[
            ("./boot/vmlinuz-6.1.192-default", &kernel[..]),
            ("./usr/lib/modules/6.1.192-default/vmlinuz", b"not this one"),
        ],
    );
    std::fs::write(s.path("kernel-default.rpm"), two).unwrap();
    let deb = build_deb(".xz", &[TarEntry::file("./boot/vmlinuz-6.1.192", &kernel)]);
    let (apt_get, apt_calls) = fake_apt_get(s, &deb, "linux-image-6.1.192=6.1.192-1");
    let matrix = s.write(
        "all.yaml",
        &format!(
            "name: all-sources
kernels:
  - id: oci
    source:
      oci: {oci}
  - id: rpm-url
    source:
      url: {rpm}
  - id: rpm-file
    source:
      file: kernel-default.rpm
      kernel_path: boot/vmlinuz-6.1.192-default
  - id: apt
    source:
      apt: {{package: linux-image-6.1.192, version: 6.1.192-1}}
",
            oci = registry.reference,
            rpm = rpm_server.url("kernel-core-6.1.192.x86_64.rpm"),
        ),
    );
    Sources {
        registry,
        rpm_server,
        apt_get,
        apt_calls,
        matrix,
    }
}

impl Sources {
    fn env(&self) -> Vec<(&'static str, &str)> {
        vec![("BPFCOMPAT_APT_GET", self.apt_get.to_str().unwrap())]
    }

    fn requests(&self) -> (usize, usize, usize) {
        let apt = std::fs::read_to_string(&self.apt_calls)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        (
            self.registry.server.requests(),
            self.rpm_server.requests(),
            apt,
        )
    }
}

fn test_command(s: &Scratch, src: &Sources, extra: &[&str]) -> Run {
    let mut args = vec![
        "test-command",
        "--cmd",
        "uname -r",
        "--matrix",
        src.matrix.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    s.run_with_env(&args, &src.env())
}

/// One run boots a kernel from every source kind; the lock file pins the
/// unpinned ones; a second run with everything cached asks no server and
/// runs no apt-get, and `--locked` is satisfied.
#[test]
fn every_source_kind_boots_and_is_pinned_by_the_lock_file() {
    let _lock = common::boot_lock();
    let s = Scratch::new();
    let src = all_sources(&s);
    let run = test_command(&s, &src, &["--concurrency", "2"]);
    assert_eq!(run.code, 0, "{}", run.context());
    for id in ["oci", "rpm-url", "rpm-file", "apt"] {
        let t = run.target(id);
        assert_eq!(t["status"], "pass", "{id}: {t}");
        assert_eq!(t["kernel"]["release"], TINY.release, "{id}");
        assert_eq!(t["kernel"]["sha256"], TINY.sha256, "{id}");
        assert_eq!(run.command_test(id)["stdout_tail"], "6.1.192\n");
    }
    assert!(run.stderr.contains("wrote"), "{}", run.stderr);
    assert_eq!(
        resolving(&run),
        ["apt", "oci", "rpm-url"],
        "only the unpinned sources are resolved while pinning: {}",
        run.stderr
    );

    let lock_path = s.path("all.yaml.lock");
    let lock_text = std::fs::read_to_string(&lock_path).unwrap();
    let lock: serde_json::Value = serde_json::from_str(&lock_text).unwrap();
    let pins = lock["kernels"].as_object().unwrap();
    let ids: Vec<&String> = pins.keys().collect();
    assert_eq!(
        ids,
        ["apt", "oci", "rpm-url"],
        "sorted; the file source pins itself"
    );
    assert_eq!(pins["oci"]["sha256"], src.registry.index_digest);
    assert_eq!(
        pins["oci"]["source"],
        format!("oci:{}", src.registry.reference)
    );
    assert_eq!(pins["apt"]["source"], "apt:linux-image-6.1.192=6.1.192-1");

    let before = src.requests();
    assert_eq!(before.2, 1, "apt-get ran once");
    let run = test_command(&s, &src, &["--locked", "--concurrency", "2"]);
    assert_eq!(run.code, 0, "{}", run.context());
    assert_eq!(
        src.requests(),
        before,
        "everything cached: no request, no apt-get"
    );
    assert_eq!(
        std::fs::read_to_string(&lock_path).unwrap(),
        lock_text,
        "the lock file is unchanged"
    );
    assert!(resolving(&run).is_empty(), "{}", run.stderr);
}

/// The kernels whose source the run said it resolved while pinning, sorted.
fn resolving(run: &Run) -> Vec<&str> {
    let mut ids: Vec<&str> = run
        .stderr
        .lines()
        .filter_map(|l| {
            l.strip_suffix("] resolving its source (not pinned by the lock file yet)")?
                .strip_prefix('[')
        })
        .collect();
    ids.sort_unstable();
    ids
}

/// Long enough for a `kernels` command on a busy 2-core runner; nothing
/// here boots.
const KERNELS_COMMAND_LIMIT: Duration = Duration::from_secs(120);

fn start(args: &[&str], env: &[(&str, &str)]) -> Running {
    Running::start(
        Command::new(env!("CARGO_BIN_EXE_bpfcompat"))
            .args(args)
            .envs(env.iter().copied()),
    )
}

fn bpfcompat(args: &[&str], env: &[(&str, &str)]) -> Output {
    start(args, env).finish_within(KERNELS_COMMAND_LIMIT)
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A matrix of one unpinned URL to the tiny kernel on `server`.
fn url_matrix(s: &Scratch, server: &TestServer) -> PathBuf {
    s.write(
        "url.yaml",
        &format!(
            "name: url\nkernels:\n  - id: tiny-url\n    source:\n      url: {}\n",
            server.url("vmlinuz-6.1.192")
        ),
    )
}

#[test]
fn locked_runs_fail_on_a_missing_or_changed_pin_naming_the_kernel() {
    let s = Scratch::new();
    let server = TestServer::start(tiny(), Plan::default());
    let matrix = url_matrix(&s, &server);
    let m = matrix.to_str().unwrap();

    let run = s.run(&["test-command", "--cmd", "true", "--locked", "--matrix", m]);
    assert_eq!(run.code, 1, "{}", run.context());
    assert!(
        run.stderr.contains("no pin for kernel tiny-url") && run.stderr.contains("kernels lock"),
        "{}",
        run.stderr
    );
    assert!(run.report.is_none());
    assert_eq!(server.requests(), 0, "--locked resolves nothing");

    let cache = s.path("cache");
    let c = cache.to_str().unwrap();
    let out = bpfcompat(&["kernels", "lock", "--matrix", m, "--cache-dir", c], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let lock_path = s.path("url.yaml.lock");
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    assert!(lock.contains(TINY.sha256), "{lock}");

    // Upstream "changed": the lock pins other bytes. The kernel fails,
    // named, with both digests; nothing is booted.
    let wrong = "e".repeat(64);
    std::fs::write(&lock_path, lock.replace(TINY.sha256, &wrong)).unwrap();
    std::fs::remove_dir_all(&cache).unwrap();
    let run = s.run(&["test-command", "--cmd", "true", "--locked", "--matrix", m]);
    assert_eq!(run.code, 1, "{}", run.context());
    let reason = run.target("tiny-url")["classification"]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reason.contains(&wrong) && reason.contains(TINY.sha256),
        "{reason}"
    );
    assert!(run.stderr.contains("tiny-url"), "{}", run.stderr);

    // An edited source no longer matches its pin: --locked says so.
    std::fs::write(
        &matrix,
        std::fs::read_to_string(&matrix)
            .unwrap()
            .replace("vmlinuz-6.1.192", "vmlinuz-new"),
    )
    .unwrap();
    let run = s.run(&["test-command", "--cmd", "true", "--locked", "--matrix", m]);
    assert_eq!(run.code, 1, "{}", run.context());
    assert!(run.stderr.contains("the matrix changed"), "{}", run.stderr);
}

/// Offline: a mirror directory and `kernels import` stand in for the origin;
/// the origin server is never asked.
#[test]
fn mirror_and_import_make_no_network_request() {
    let s = Scratch::new();
    let origin = TestServer::start(b"never served".to_vec(), Plan::default());
    let pinned = s.write(
        "pinned.yaml",
        &format!(
            "name: pinned\nkernels:\n  - id: tiny\n    source:\n      url: {}\n      sha256: {}\n",
            origin.url("vmlinuz-6.1.192"),
            TINY.sha256
        ),
    );
    let p = pinned.to_str().unwrap();

    // A mirror directory of downloaded files, by name.
    let mirror = s.path("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    std::fs::copy(
        kernels_dir().join(TINY.file),
        mirror.join("vmlinuz-6.1.192"),
    )
    .unwrap();
    let cache = s.path("cache-mirror");
    let env = [("BPFCOMPAT_KERNEL_MIRROR", mirror.to_str().unwrap())];
    let out = bpfcompat(
        &[
            "kernels",
            "fetch",
            "--matrix",
            p,
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
        &env,
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("tiny") && stdout.contains("6.1.192"),
        "{stdout}"
    );

    // Import into a fresh cache; then fetch and list need nothing else.
    let cache = s.path("cache-import");
    let c = cache.to_str().unwrap();
    let out = bpfcompat(
        &[
            "kernels",
            "import",
            mirror.to_str().unwrap(),
            "--cache-dir",
            c,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(TINY.sha256),
        "{}",
        text(&out)
    );
    let out = bpfcompat(&["kernels", "fetch", "--matrix", p, "--cache-dir", c], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = bpfcompat(&["kernels", "list", "--matrix", p, "--cache-dir", c], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("cached") && stdout.contains("bzImage"),
        "{stdout}"
    );
    assert_eq!(origin.requests(), 0);

    // verify, then prune --all empties the cache.
    let out = bpfcompat(&["kernels", "verify", "--matrix", p, "--cache-dir", c], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = bpfcompat(&["kernels", "prune", "--all", "--cache-dir", c], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = bpfcompat(&["kernels", "list", "--matrix", p, "--cache-dir", c], &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("not cached"),
        "{}",
        text(&out)
    );
    let out = bpfcompat(&["kernels", "verify", "--matrix", p, "--cache-dir", c], &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a matrix kernel is missing: {}",
        text(&out)
    );
}

/// Two processes fetching the same unpinned sources into one cache download
/// each thing once, both succeed, and the cache verifies.
#[test]
fn concurrent_runs_on_one_cache_download_once() {
    let s = Scratch::new();
    let plan = Plan {
        slow: true,
        ..Plan::default()
    };
    let server = TestServer::start(tiny(), plan);
    let registry = oci_registry("k", "6.1", &tiny(), ".gz");
    let matrix = s.write(
        "both.yaml",
        &format!(
            "name: both\nkernels:\n  - id: url\n    source:\n      url: {}\n  - id: oci\n    source:\n      oci: {}\n",
            server.url("vmlinuz"),
            registry.reference
        ),
    );
    let cache = s.path("cache");
    let (m, c) = (matrix.to_str().unwrap(), cache.to_str().unwrap());
    let fetch = ["kernels", "fetch", "--matrix", m, "--cache-dir", c];
    let children: Vec<Running> = (0..2).map(|_| start(&fetch, &[])).collect();
    for child in children {
        let out = child.finish_within(KERNELS_COMMAND_LIMIT);
        assert!(out.status.success(), "{}", text(&out));
    }
    assert_eq!(server.requests(), 1, "the URL was downloaded once");
    let after_two = registry.server.requests();
    // token flow: manifest 401, token, index, manifest, 2 layers.
    assert!(
        after_two <= 7,
        "the image was pulled once ({after_two} requests)"
    );
    assert!(
        std::fs::read_dir(cache.join("tmp"))
            .unwrap()
            .next()
            .is_none(),
        "no partial files left"
    );
    let lock = std::fs::read_to_string(s.path("both.yaml.lock")).unwrap();
    assert!(
        lock.contains(TINY.sha256) && lock.contains(&registry.index_digest),
        "{lock}"
    );
    assert_eq!(sha256_hex(&tiny()), TINY.sha256);

    // Everything both stored is intact, and the matrix's kernels are there.
    let out = bpfcompat(&["kernels", "verify", "--matrix", m, "--cache-dir", c], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(" 0 corrupt"), "{stdout}");
    assert_eq!(stdout.matches(" cached ").count(), 2, "{stdout}");
}

/// The CLI prints an error's chain of causes: each must appear once.
#[test]
fn a_cache_error_names_its_cause_once() {
    let s = Scratch::new();
    // The cache directory cannot be created under a file.
    let cache = s.write("not-a-dir", "").join("cache");
    let kernel = kernels_dir().join(TINY.file);
    let out = bpfcompat(
        &[
            "kernels",
            "import",
            kernel.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(cache.to_str().unwrap()), "{stderr}");
    assert_eq!(stderr.matches("Not a directory").count(), 1, "{stderr}");
}

#[test]
fn shipped_matrices_are_found_by_name() {
    let s = Scratch::new();
    let cache = s.path("cache");
    let c = cache.to_str().unwrap();
    let out = bpfcompat(
        &[
            "kernels",
            "list",
            "--matrix",
            "quirk-library",
            "--cache-dir",
            c,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("rhel8-4.18-backports") && stdout.contains("not cached"),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("built-in matrix"),
        "{}",
        text(&out)
    );
    let out = bpfcompat(
        &["kernels", "list", "--matrix", "no-such", "--cache-dir", c],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "default, mvp, quirk-library, ubuntu-lts, rhel-family, amazon-linux, oracle-uek, suse, arm64"
        ),
        "{}",
        text(&out)
    );
}

/// `kernels verify --remote` asks each origin whether its source is still
/// published without downloading it: HEAD for a URL (a 404 fails the
/// command), one manifest request for an image tag (and says when the tag
/// moved away from the lock file's pin), apt's `--print-uris`.
#[test]
fn verify_remote_asks_every_origin_without_downloading() {
    use std::sync::{Arc, Mutex};
    let s = Scratch::new();
    let methods = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = methods.clone();
    let server = TestServer::with_handler(Arc::new(move |req, _, stream| {
        seen.lock()
            .unwrap()
            .push(format!("{} {}", req.method, req.target));
        let status = if req.target.ends_with("/gone.rpm") {
            404
        } else {
            200
        };
        bpfcompat_testkit::http::respond(stream, status, &[], b"")
    }));
    let registry = oci_registry("cilium/ci-kernels", "6.12", &tiny(), ".gz");
    let apt_log = s.path("apt-args");
    let apt = s.write(
        "apt-get",
        &format!(
            "#!/bin/sh\necho \"$*\" >> {}\n[ \"$1 $2\" = 'download --print-uris' ] || exit 1\necho \"'http://deb.example/pool/$3.deb' x.deb 100 SHA256:00\"\n",
            apt_log.display()
        ),
    );
    std::fs::set_permissions(&apt, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let matrix = s.write(
        "remote.yaml",
        &format!(
            "name: remote\nkernels:\n\
             - id: image\n  source: {{oci: '{}'}}\n\
             - id: package\n  source: {{url: '{}'}}\n  modules: {{url: '{}'}}\n\
             - id: ubuntu\n  source: {{apt: {{package: linux-image-unsigned-6.8.0-31-generic, version: 6.8.0-31.31}}}}\n",
            registry.reference,
            server.url("kernel.rpm"),
            server.url("modules.rpm"),
        ),
    );
    // The lock pins the image to what it pointed at before.
    s.write(
        "remote.yaml.lock",
        &format!(
            "{{\"version\":1,\"kernels\":{{\"image\":{{\"source\":\"oci:{}\",\"sha256\":\"{}\"}}}}}}\n",
            registry.reference,
            "e".repeat(64)
        ),
    );
    let env = [(bpfcompat::kernel::APT_GET_ENV, apt.to_str().unwrap())];
    let cache = s.path("cache");
    let args = |m: &str| {
        vec![
            "kernels".to_owned(),
            "verify".into(),
            "--remote".into(),
            "--matrix".into(),
            m.to_owned(),
            "--cache-dir".into(),
            cache.display().to_string(),
        ]
    };
    let argv = args(matrix.to_str().unwrap());
    let out = bpfcompat(&argv.iter().map(String::as_str).collect::<Vec<_>>(), &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let row = |id: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(id))
            .unwrap_or_else(|| panic!("no row {id}: {stdout}"))
            .to_owned()
    };
    assert!(
        row("image").contains(&format!("points at sha256:{}", registry.index_digest)),
        "{stdout}"
    );
    assert!(
        row("image").contains("the lock file pins sha256:eeee"),
        "{stdout}"
    );
    assert!(
        row("package").contains(" ok ") && row("package").contains("HTTP 200"),
        "{stdout}"
    );
    assert!(row("package:modules").contains("HTTP 200"), "{stdout}");
    assert!(
        row("ubuntu").contains("apt has 'http://deb.example/pool/linux-image-unsigned"),
        "{stdout}"
    );
    assert_eq!(
        *methods.lock().unwrap(),
        ["HEAD /kernel.rpm", "HEAD /modules.rpm"],
        "HEAD requests only"
    );
    assert!(
        !std::fs::read_dir(&cache)
            .map(|d| d.count() > 0)
            .unwrap_or(false),
        "nothing was downloaded into the cache"
    );

    // A source that is gone fails the command, naming it.
    let gone = s.write(
        "gone.yaml",
        &format!(
            "name: gone\nkernels:\n- id: gone\n  required: false\n  source: {{url: '{}'}}\n",
            server.url("gone.rpm")
        ),
    );
    let argv = args(gone.to_str().unwrap());
    let out = bpfcompat(&argv.iter().map(String::as_str).collect::<Vec<_>>(), &env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("UNAVAILABLE") && stdout.contains("HTTP 404"),
        "{stdout}"
    );
}

/// A kernel's `modules:` source is fetched, listed and kept by `prune`
/// like its kernel.
#[test]
fn a_modules_source_is_fetched_listed_and_kept_like_its_kernel() {
    let s = Scratch::new();
    let dir = kernels_dir();
    let matrix = s.write(
        "m.yaml",
        &format!(
            "name: m\nkernels:\n- id: k\n  source: {{file: '{}'}}\n  modules: {{file: '{}'}}\n",
            dir.join(TINY.file).display(),
            dir.join(common::MODULES_72.file).display()
        ),
    );
    let cache = s.path("cache");
    let (m, c) = (matrix.to_str().unwrap(), cache.to_str().unwrap());
    for command in ["fetch", "list", "prune"] {
        let out = bpfcompat(&["kernels", command, "--matrix", m, "--cache-dir", c], &[]);
        assert!(out.status.success(), "{command}: {}", text(&out));
        if command != "prune" {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let row = stdout
                .lines()
                .find(|l| l.starts_with("k:modules "))
                .unwrap_or_else(|| panic!("{command}: {stdout}"));
            assert!(
                row.contains("cached") && row.contains("1018 modules"),
                "{row}"
            );
        }
    }
    let trees = std::fs::read_dir(cache.join("modules")).unwrap().count();
    assert_eq!(trees, 1, "prune kept the module tree the matrix needs");
}

/// A sweep of the recorded Debian bookworm indices: every 6.1 cloud ABI,
/// newest first, pinned by the indices' digests; the entry for the package
/// the test kernels hold (6.1.0-47) resolves offline through a mirror of
/// it, by the digest the index gave, and boots.
#[test]
fn a_swept_debian_abi_resolves_by_the_index_digest_and_boots() {
    let _lock = common::boot_lock();
    let s = Scratch::new();
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sweep");
    let main = fixtures.join("bookworm-Packages");
    let security = fixtures.join("bookworm-security-Packages");
    let archive = "https://archive.invalid/debian";
    let all = s.path("all.yaml");
    let args = |index: &[&PathBuf], out: &PathBuf, extra: &[&str]| {
        let mut args = vec!["kernels", "sweep", "6.1", "--flavour", "cloud-amd64"];
        for i in index {
            args.extend(["--index", i.to_str().unwrap()]);
        }
        args.extend(["--archive", archive, "--out", out.to_str().unwrap()]);
        args.extend(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        bpfcompat(&args, &[])
    };
    let out = run(args(&[&main, &security], &all, &[]));
    assert!(out.status.success(), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stderr).into_owned();
    let abis: Vec<&str> = listed
        .lines()
        .filter(|l| l.starts_with("linux-image-"))
        .collect();
    assert!(abis.len() >= 3, "{listed}");
    assert_eq!(
        abis.last().unwrap(),
        &"linux-image-6.1.0-47-cloud-amd64 6.1.170-3"
    );
    let yaml = std::fs::read_to_string(&all).unwrap();
    assert!(
        yaml.contains(&format!("sha256: {}", K61_DEB.sha256)),
        "{yaml}"
    );

    // The oldest ABI alone: the index of its one stanza.
    let text_of_main = std::fs::read_to_string(&main).unwrap();
    let stanza = text_of_main
        .split("\n\n")
        .find(|st| st.starts_with("Package: linux-image-6.1.0-47-cloud-amd64\n"))
        .unwrap();
    let one = s.write("one-Packages", stanza);
    let matrix = s.path("sweep.yaml");
    let out = run(args(&[&one], &matrix, &["--last", "1"]));
    assert!(out.status.success(), "{}", text(&out));
    let mirror = kernels_dir().join("packages");
    let cache = s.path("cache");
    let env = [("BPFCOMPAT_KERNEL_MIRROR", mirror.to_str().unwrap())];
    let fetched = fetch_into(&matrix, &cache, &env);
    assert!(fetched.status.success(), "{}", text(&fetched));
    let run = s.run_with_env(
        &[
            "test-command",
            "--cmd",
            "uname -r",
            "--matrix",
            matrix.to_str().unwrap(),
            "--locked",
        ],
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.context());
    assert_eq!(
        run.command_test("6.1.0-47-cloud-amd64")["stdout_tail"]
            .as_str()
            .unwrap()
            .trim(),
        K61_DEB.release
    );

    let nothing = run_sweep_error(&args(&[&main], &s.path("none.yaml"), &[]), "6.12");
    assert!(
        nothing.contains("no point release of 6.12 in flavour cloud-amd64"),
        "{nothing}"
    );
}

/// `kernels sweep` with the series swapped for `series`: its error.
fn run_sweep_error(args: &[String], series: &str) -> String {
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args[2] = series;
    let out = bpfcompat(&args, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A `sweep:` entry of a matrix: swept from its index on the first fetch
/// and recorded in the lock file, its kernels fetched by the index's
/// digests; `kernels outdated` says when the index offers a newer point
/// release, and `--locked` refuses a sweep the lock file has not swept.
#[test]
fn a_sweep_entry_is_locked_and_outdated_says_when_a_newer_release_is_out() {
    let s = Scratch::new();
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sweep");
    let bookworm = std::fs::read_to_string(fixtures.join("bookworm-Packages")).unwrap();
    let stanza = bookworm
        .split("\n\n")
        .find(|st| st.starts_with("Package: linux-image-6.1.0-47-cloud-amd64\n"))
        .unwrap();
    s.write("Packages", stanza);
    let sweep = "  - id: deb61\n    required: false\n    sweep:\n      series: \"6.1\"\n      \
                 flavour: cloud-amd64\n      index: [Packages]\n      \
                 archive: https://archive.invalid/debian\n";
    let matrix = s.write("fleet.yaml", &format!("name: fleet\nkernels:\n{sweep}"));
    let m = matrix.to_str().unwrap();
    let mirror = kernels_dir().join("packages");
    let env = [("BPFCOMPAT_KERNEL_MIRROR", mirror.to_str().unwrap())];
    let cache = s.path("cache");
    let c = cache.to_str().unwrap();
    let fetched = bpfcompat(&["kernels", "fetch", "--matrix", m, "--cache-dir", c], &env);
    assert!(fetched.status.success(), "{}", text(&fetched));
    assert!(
        String::from_utf8_lossy(&fetched.stderr).contains("[deb61] sweeping its indices"),
        "{}",
        text(&fetched)
    );
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("fleet.yaml.lock")).unwrap()).unwrap();
    let swept = &lock["sweeps"]["deb61"]["kernels"];
    assert_eq!(swept[0]["id"], "deb61-6.1.0-47-cloud-amd64", "{lock}");
    assert_eq!(swept[0]["sha256"], K61_DEB.sha256);
    let listed = bpfcompat(&["kernels", "list", "--matrix", m, "--cache-dir", c], &[]);
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("deb61-6.1.0-47-cloud-amd64"),
        "{}",
        text(&listed)
    );

    let outdated = bpfcompat(&["kernels", "outdated", "--matrix", m], &[]);
    assert_eq!(outdated.status.code(), Some(0), "{}", text(&outdated));
    // The archive moves on: the whole bookworm index, 6.1.0-50 in it.
    s.write("Packages", &bookworm);
    let outdated = bpfcompat(&["kernels", "outdated", "--matrix", m], &[]);
    assert_eq!(outdated.status.code(), Some(2), "{}", text(&outdated));
    let said = String::from_utf8_lossy(&outdated.stdout);
    assert!(
        said.contains("newer") && said.contains("linux-image-6.1.0-50-cloud-amd64"),
        "{said}"
    );
    // The weekly freshness check says so too, for its issue.
    let fresh = Command::new("bash")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/freshness.sh"))
        .arg(m)
        .env("BPFCOMPAT_BIN", env!("CARGO_BIN_EXE_bpfcompat"))
        .env("BPFCOMPAT_CACHE_DIR", c)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&fresh.stdout);
    assert_eq!(fresh.status.code(), Some(1), "{}", text(&fresh));
    assert!(
        report.contains("`bpfcompat kernels outdated` exited 2")
            && report.contains("linux-image-6.1.0-50-cloud-amd64")
            // Its archive (.invalid) publishes nothing, which is said too.
            && report.contains("`bpfcompat kernels verify --remote` exited 1"),
        "{report}"
    );
    // A locked run still checks what was swept.
    let fetch_locked = || {
        bpfcompat(
            &[
                "kernels",
                "fetch",
                "--matrix",
                m,
                "--cache-dir",
                c,
                "--locked",
            ],
            &env,
        )
    };
    let locked = fetch_locked();
    assert!(locked.status.success(), "{}", text(&locked));
    // An edited sweep is not what the lock file swept.
    s.write(
        "fleet.yaml",
        &format!("name: fleet\nkernels:\n{sweep}      last: 1\n"),
    );
    let refused = fetch_locked();
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("has not swept kernels[deb61]"),
        "{}",
        text(&refused)
    );
}

/// The live Debian mirror `BPFCOMPAT_DEBIAN_MIRROR` names (the variable
/// scripts/install-deps.sh takes; .ci/run sets it from the machine's apt
/// sources), when it answers. Without one, or when it cannot be reached,
/// the test says it did not run, and why.
fn live_debian_mirror(test: &str) -> Option<String> {
    let Some(mirror) = std::env::var("BPFCOMPAT_DEBIAN_MIRROR")
        .ok()
        .filter(|m| !m.is_empty())
    else {
        eprintln!(
            "SKIPPED {test}: BPFCOMPAT_DEBIAN_MIRROR names no Debian mirror, so the live archive \
             is not asked (the recorded indices are: \
             a_swept_debian_abi_resolves_by_the_index_digest_and_boots)"
        );
        return None;
    };
    let url = url::Url::parse(&mirror).expect("BPFCOMPAT_DEBIAN_MIRROR is a URL");
    let addr = url
        .socket_addrs(|| None)
        .ok()
        .and_then(|a| a.first().copied());
    let answers = addr
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(10)).is_ok());
    if !answers {
        eprintln!("SKIPPED {test}: the Debian mirror {mirror} cannot be reached from here");
        return None;
    }
    Some(mirror.trim_end_matches('/').to_owned())
}

/// bookworm's own 6.1 cloud ABIs, swept from the live archive's real index.
#[test]
fn a_live_sweep_of_the_debian_archive_when_it_is_reachable() {
    let Some(mirror) =
        live_debian_mirror("a_live_sweep_of_the_debian_archive_when_it_is_reachable")
    else {
        return;
    };
    let index = format!("{mirror}/dists/bookworm/main/binary-amd64/Packages.xz");
    let out = bpfcompat(
        &[
            "kernels",
            "sweep",
            "6.1",
            "--flavour",
            "cloud-amd64",
            "--index",
            &index,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let yaml = String::from_utf8_lossy(&out.stdout);
    assert!(
        yaml.contains("  - id: 6.1.0-") && yaml.contains(&format!("url: {mirror}/pool/main/")),
        "{yaml}"
    );
}

/// The built-in arm64 matrix against the live archive: each of its sweeps
/// finds its newest arm64 cloud ABI, and the package is published.
#[test]
fn the_built_in_arm64_matrix_is_published_on_the_live_debian_archive() {
    let test = "the_built_in_arm64_matrix_is_published_on_the_live_debian_archive";
    let Some(mirror) = live_debian_mirror(test) else {
        return;
    };
    let s = Scratch::new();
    let out = Running::start(
        Command::new(env!("CARGO_BIN_EXE_bpfcompat"))
            .args(["kernels", "verify", "--remote", "--matrix", "arm64"])
            .env("BPFCOMPAT_DEBIAN_MIRROR", &mirror)
            .current_dir(s.dir.path()),
    )
    .finish_within(KERNELS_COMMAND_LIMIT);
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    for (id, series) in [
        ("debian-11-arm64-", "5.10"),
        ("debian-12-arm64-", "6.1"),
        ("debian-13-arm64-", "6.12"),
    ] {
        let row = table
            .lines()
            .find(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|k| k.starts_with(id))
            })
            .unwrap_or_else(|| panic!("no {id} row:\n{table}"));
        assert!(
            row.contains(&format!("{id}{series}.")) && row.contains("-cloud-arm64"),
            "{row}"
        );
        assert_eq!(row.split_whitespace().nth(2), Some("ok"), "{row}");
    }
}

/// An OCI repository's tags as a sweep: the point releases of the series
/// (not the series tag itself, not 6.10.x), newest first across the tags
/// list's pages, each pinned by the digest its tag points at; a `sweep:`
/// of it fetches them.
#[test]
fn the_point_release_tags_of_an_image_repository_are_swept_and_fetched() {
    let s = Scratch::new();
    let tags = ["6.1.100", "6.1", "6.10.1", "6.1.120", "latest", "6.12.3"];
    let registry =
        bpfcompat_testkit::oci::oci_registry_with_tags("kernels/ci", &tags, &tiny(), ".gz");
    let repository = registry.reference.rsplit_once(':').unwrap().0.to_owned();
    let index = format!("oci:{repository}");
    let out = bpfcompat(&["kernels", "sweep", "6.1", "--index", &index], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let yaml = String::from_utf8_lossy(&out.stdout);
    let pinned = |tag: &str| format!("oci: {repository}:{tag}@sha256:{}", registry.index_digest);
    let (newer, older) = (yaml.find(&pinned("6.1.120")), yaml.find(&pinned("6.1.100")));
    assert!(
        newer.is_some() && older.is_some() && newer < older,
        "{yaml}"
    );
    assert_eq!(yaml.matches("  - id: ").count(), 2, "{yaml}");

    let matrix = s.write(
        "tags.yaml",
        &format!(
            "name: tags\nkernels:\n  - id: ci\n    sweep:\n      series: \"6.1\"\n      \
             index: [\"{index}\"]\n      last: 1\n"
        ),
    );
    let cache = s.path("cache");
    let fetched = fetch_into(&matrix, &cache, &[]);
    assert!(fetched.status.success(), "{}", text(&fetched));
    let lock = std::fs::read_to_string(s.path("tags.yaml.lock")).unwrap();
    assert!(
        lock.contains("\"id\": \"ci-6.1.120\"") && lock.contains(&registry.index_digest),
        "{lock}"
    );
}

/// `kernels fetch` of `matrix` into the cache at `cache`.
fn fetch_into(matrix: &std::path::Path, cache: &std::path::Path, env: &[(&str, &str)]) -> Output {
    let (m, c) = (matrix.to_str().unwrap(), cache.to_str().unwrap());
    bpfcompat(&["kernels", "fetch", "--matrix", m, "--cache-dir", c], env)
}

/// Debian 7.x splits a kernel (`linux-binary-*`) from its modules
/// (`linux-modules-*`): a sweep with `modules: linux-modules` pairs each
/// release with the modules package of its version (one without is left
/// out), both fetched by the index's digests through a mirror, and the
/// kernel boots with its modules loaded from that package.
#[test]
fn a_sweep_pairs_debian_7_kernels_with_their_modules_package() {
    let _lock = common::boot_lock();
    let s = Scratch::new();
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sweep");
    let matrix = s.write(
        "sid.yaml",
        &format!(
            "name: sid\nkernels:\n  - id: sid\n    sweep:\n      series: \"7.2\"\n      \
             flavour: cloud-amd64\n      modules: linux-modules\n      index: [\"{}\"]\n      \
             archive: https://archive.invalid/debian\n",
            fixtures.join("sid-Packages").display()
        ),
    );
    let mirror = kernels_dir().join("packages");
    let env = [("BPFCOMPAT_KERNEL_MIRROR", mirror.to_str().unwrap())];
    let fetched = fetch_into(&matrix, &s.path("cache"), &env);
    assert!(fetched.status.success(), "{}", text(&fetched));
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("sid.yaml.lock")).unwrap()).unwrap();
    let swept = lock["sweeps"]["sid"]["kernels"].as_array().unwrap();
    assert_eq!(swept.len(), 1, "7.2.9 has no modules package: {lock}");
    assert_eq!(swept[0]["id"], "sid-7.2.13_deb14-cloud-amd64");
    assert_eq!(swept[0]["sha256"], K72.sha256);
    assert_eq!(swept[0]["modules"]["sha256"], MODULES_72.sha256);
    let run = s.run_with_env(
        &[
            "test-command",
            "--cmd",
            "uname -r; lsmod | wc -l",
            "--matrix",
            matrix.to_str().unwrap(),
            "--modules",
            "tls",
            "--locked",
        ],
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.context());
    let out = run.command_test("sid-7.2.13_deb14-cloud-amd64")["stdout_tail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(out.starts_with(K72.release), "{out}");
    // The modules came from the swept linux-modules package.
    let modules = &run.target("sid-7.2.13_deb14-cloud-amd64")["kernel"]["modules"];
    assert!(
        modules["tree"]
            .as_str()
            .unwrap()
            .starts_with("modules: url:https://archive.invalid/")
            && modules["loaded"].to_string().contains("\"tls\""),
        "{modules}"
    );
}
