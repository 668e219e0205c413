//! Test helpers: the real test kernels, packages and images built on the
//! spot, and a tiny HTTP server on 127.0.0.1 (serving one file, or an OCI
//! registry with the token flow). The end-to-end tests in `tests/kernels.rs`
//! include this file too.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub(crate) const DEB_72: &str = "packages/linux-binary-7.2.13+deb14-cloud-amd64_7.2.13-1_amd64.deb";
pub(crate) const DEB_72_SHA: &str =
    "03e41f1c34c16583462f029e81944a85ebcdb78098c258dedfa1cfdd680a27f8";
/// The smallest real kernel (2.3 MB): cheap to serve and hash.
pub(crate) const TINY: &str = "vmlinuz-6.1.192-tiny-nobtf";
pub(crate) const TINY_SHA: &str =
    "b8796455dc25bc3ab6a6610305d26b529b922890089dcde59005ea1b69ffec6f";

/// The shared test kernels: `$BPFCOMPAT_TEST_KERNELS`, by default
/// `<crate>/../shared/kernels`. Missing kernels fail the test: never skip.
pub(crate) fn kernels_dir() -> PathBuf {
    let dir = std::env::var_os("BPFCOMPAT_TEST_KERNELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/kernels"));
    for needed in [TINY, DEB_72] {
        assert!(
            dir.join(needed).is_file(),
            "test kernel {} is missing: these tests need the real kernels in shared/kernels; \
             set BPFCOMPAT_TEST_KERNELS to the folder that holds them",
            dir.join(needed).display()
        );
    }
    dir
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A minimal file that passes for a bzImage: boot signature and "HdrS".
pub(crate) fn fake_bzimage(payload: &[u8]) -> Vec<u8> {
    let mut image = vec![0u8; 0x400];
    image[0x1fe] = 0x55;
    image[0x1ff] = 0xaa;
    image[0x202..0x206].copy_from_slice(b"HdrS");
    image.extend_from_slice(payload);
    image
}

pub(crate) struct TarEntry {
    path: String,
    kind: tar::EntryType,
    data: Vec<u8>,
    link: Option<String>,
}

impl TarEntry {
    pub(crate) fn file(path: &str, data: &[u8]) -> Self {
        Self {
            path: path.to_owned(),
            kind: tar::EntryType::Regular,
            data: data.to_vec(),
            link: None,
        }
    }

    pub(crate) fn dir(path: &str) -> Self {
        Self {
            path: path.to_owned(),
            kind: tar::EntryType::Directory,
            data: Vec::new(),
            link: None,
        }
    }

    pub(crate) fn symlink(path: &str, target: &str) -> Self {
        Self {
            path: path.to_owned(),
            kind: tar::EntryType::Symlink,
            data: Vec::new(),
            link: Some(target.to_owned()),
        }
    }

    pub(crate) fn hard_link(path: &str, target: &str) -> Self {
        Self {
            path: path.to_owned(),
            kind: tar::EntryType::Link,
            data: Vec::new(),
            link: Some(target.to_owned()),
        }
    }
}

/// A tarball written header by header, so that it can hold the unsafe paths
/// the tar crate's own setters refuse.
fn build_tar(entries: &[TarEntry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for e in entries {
        let mut header = tar::Header::new_gnu();
        assert!(e.path.len() < 100, "test paths must fit the header");
        header.as_old_mut().name[..e.path.len()].copy_from_slice(e.path.as_bytes());
        if let Some(link) = &e.link {
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(e.kind);
        header.set_size(e.data.len() as u64);
        header.set_mode(if e.kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder.append(&header, &e.data[..]).unwrap();
    }
    builder.into_inner().unwrap()
}

fn compress(compression: &str, data: Vec<u8>) -> Vec<u8> {
    match compression {
        "" => data,
        ".gz" => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&data).unwrap();
            enc.finish().unwrap()
        }
        ".zst" => ruzstd::encoding::compress_to_vec(
            &data[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        ),
        ".xz" => {
            // The xz crate here decodes only; the xz tool is on every Debian.
            let mut child = std::process::Command::new("xz")
                .args(["-c", "-0"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("the xz tool (xz-utils) is installed");
            let mut stdin = child.stdin.take().unwrap();
            let writer = std::thread::spawn(move || stdin.write_all(&data).unwrap());
            let out = child.wait_with_output().unwrap();
            writer.join().unwrap();
            assert!(out.status.success());
            out.stdout
        }
        other => panic!("no test compressor for {other}"),
    }
}

/// A newc cpio archive of regular files, names written as given.
pub(crate) fn build_cpio(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut entry = |name: &str, mode: u32, data: &[u8]| {
        let fields = [
            1,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        out.extend_from_slice(b"070701");
        for f in fields {
            out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    };
    for (name, data) in files {
        entry(name, 0o100_644, data);
    }
    entry("TRAILER!!!", 0, b"");
    out
}

/// One RPM header structure with a single string entry (tag 1000, the name).
fn rpm_header(pad_to_8: bool) -> Vec<u8> {
    let data = b"linux-test\0";
    let mut h = vec![0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0];
    h.extend_from_slice(&1u32.to_be_bytes());
    h.extend_from_slice(&(data.len() as u32).to_be_bytes());
    for v in [1000u32, 6, 0, 1] {
        h.extend_from_slice(&v.to_be_bytes());
    }
    h.extend_from_slice(data);
    while pad_to_8 && h.len() % 8 != 0 {
        h.push(0);
    }
    h
}

/// A minimal RPM package: lead, signature header, header, and the files as a
/// cpio payload compressed with `compression` (".gz", ".xz" or ".zst").
pub(crate) fn build_rpm(compression: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut lead = vec![0u8; 96];
    lead[..4].copy_from_slice(&[0xed, 0xab, 0xee, 0xdb]);
    lead[4] = 3; // format 3.0
    lead[7] = 0; // binary package
    lead[9] = 1; // x86
    lead[10..20].copy_from_slice(b"linux-test");
    lead[77] = 1; // Linux
    lead[79] = 5; // signature type: header-style
    let mut rpm = lead;
    rpm.extend(rpm_header(true));
    rpm.extend(rpm_header(false));
    rpm.extend(compress(compression, build_cpio(files)));
    rpm
}

/// A Debian package: debian-binary, control.tar.gz, data.tar<compression>.
pub(crate) fn build_deb(compression: &str, entries: &[TarEntry]) -> Vec<u8> {
    let control = compress(
        ".gz",
        build_tar(&[TarEntry::file(
            "./control",
            b"Package: linux-test\nVersion: 1.0\n",
        )]),
    );
    let data = compress(compression, build_tar(entries));
    let mut ar = ar::Builder::new(Vec::new());
    let mut member = |name: &str, bytes: &[u8]| {
        ar.append(
            &ar::Header::new(name.as_bytes().to_vec(), bytes.len() as u64),
            bytes,
        )
        .unwrap();
    };
    member("debian-binary", b"2.0\n");
    member("control.tar.gz", &control);
    member(&format!("data.tar{compression}"), &data);
    ar.into_inner().unwrap()
}

/// How the test server misbehaves.
#[derive(Clone, Default)]
pub(crate) struct Plan {
    /// The first N requests get the headers (with the full Content-Length)
    /// and part of the body, then a closed connection.
    pub(crate) truncate_first: usize,
    /// The first N requests get this status instead of the body.
    pub(crate) status_first: Option<(u16, usize)>,
    /// The first N requests get the headers and part of the body, then
    /// nothing for 2 s.
    pub(crate) stall_first: usize,
    /// How many bytes of the body a truncated or stalled response sends:
    /// half by default.
    pub(crate) break_at: Option<usize>,
    /// Send the body in pieces with pauses (about a second in all), so that
    /// concurrent clients overlap.
    pub(crate) slow: bool,
    /// Answer `Range: bytes=N-` with 206 and the rest of the body.
    pub(crate) ranges: bool,
}

/// One request as the test server saw it.
pub(crate) struct Request {
    pub(crate) path: String,
    /// Names in lowercase.
    pub(crate) headers: Vec<(String, String)>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Answers one request; `n` counts requests from 0.
pub(crate) type Handler =
    dyn Fn(&Request, usize, &mut TcpStream) -> std::io::Result<()> + Send + Sync;

/// An HTTP/1.1 server on 127.0.0.1, a thread per connection, that logs the
/// requests it gets. It stops when dropped, or after five minutes at most.
pub(crate) struct TestServer {
    addr: String,
    /// The `Range` header of every request so far, in order.
    ranges: Arc<Mutex<Vec<Option<String>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Serves `body` at any path, misbehaving as `plan` says.
    pub(crate) fn start(body: Vec<u8>, plan: Plan) -> Self {
        Self::with_handler(Arc::new(move |req, n, stream| {
            serve_body(stream, req, &body, &plan, n)
        }))
    }

    pub(crate) fn with_handler(handler: Arc<Handler>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let ranges = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (ranges, stop) = (ranges.clone(), stop.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(300);
                let mut connections = Vec::new();
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (ranges, handler) = (ranges.clone(), handler.clone());
                            connections.push(std::thread::spawn(move || {
                                let _ = serve(stream, &ranges, &*handler);
                            }));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
                for c in connections {
                    let _ = c.join();
                }
            })
        };
        Self {
            addr,
            ranges,
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    /// `127.0.0.1:PORT`.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    pub(crate) fn requests(&self) -> usize {
        self.ranges.lock().unwrap().len()
    }

    /// The `Range` header of each request so far, in order.
    pub(crate) fn ranges(&self) -> Vec<Option<String>> {
        self.ranges.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Read one request head from `stream` and hand it to `handler`.
fn serve(
    mut stream: TcpStream,
    ranges: &Mutex<Vec<Option<String>>>,
    handler: &Handler,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    // Read the request head (GET, no body).
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.lines();
    let path = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let request = Request { path, headers };
    let n = {
        let mut ranges = ranges.lock().unwrap();
        ranges.push(request.header("range").map(str::to_owned));
        ranges.len() - 1
    };
    handler(&request, n, &mut stream)
}

/// A whole response with `Connection: close`.
pub(crate) fn respond(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} Test\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    stream.shutdown(Shutdown::Write)
}

fn serve_body(
    stream: &mut TcpStream,
    req: &Request,
    body: &[u8],
    plan: &Plan,
    n: usize,
) -> std::io::Result<()> {
    if let Some((status, times)) = plan.status_first {
        if n < times {
            return respond(stream, status, &[], b"");
        }
    }
    let from = req
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse::<usize>().ok())
        .filter(|&from| plan.ranges && from < body.len());
    let (status, part) = match from {
        Some(from) => (206, &body[from..]),
        None => (200, body),
    };
    let mut header = format!(
        "HTTP/1.1 {status} OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
        part.len()
    );
    if let Some(from) = from {
        header.push_str(&format!(
            "Content-Range: bytes {from}-{}/{}\r\n",
            body.len() - 1,
            body.len()
        ));
    }
    header.push_str("\r\n");
    stream.write_all(header.as_bytes())?;
    let cut = plan.break_at.unwrap_or(part.len() / 2).min(part.len());
    if n < plan.truncate_first {
        stream.write_all(&part[..cut])?;
        stream.flush()?;
        return stream.shutdown(Shutdown::Both);
    }
    if n < plan.stall_first {
        stream.write_all(&part[..cut])?;
        stream.flush()?;
        std::thread::sleep(Duration::from_secs(2));
        return Ok(());
    }
    if plan.slow {
        let piece = part.len().div_ceil(10).max(1);
        for chunk in part.chunks(piece) {
            stream.write_all(chunk)?;
            std::thread::sleep(Duration::from_millis(100));
        }
    } else {
        stream.write_all(part)?;
    }
    stream.flush()?;
    stream.shutdown(Shutdown::Write)
}

/// A tarball (".gz", ".zst" or "" compressed) holding `files`, as an image
/// layer.
pub(crate) fn build_layer(compression: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let entries: Vec<TarEntry> = files.iter().map(|(p, d)| TarEntry::file(p, d)).collect();
    compress(compression, build_tar(&entries))
}

/// What the test registry serves, and the digests a test checks.
pub(crate) struct Registry {
    pub(crate) server: TestServer,
    /// `127.0.0.1:PORT/<repo>:<tag>`.
    pub(crate) reference: String,
    /// sha256 of the index the tag points at.
    pub(crate) index_digest: String,
}

/// An OCI registry on 127.0.0.1 serving `repo:tag` as a multi-platform index:
/// an arm64 decoy (whose kernel is different) first, then linux/amd64, whose
/// image has `kernel` at `boot/vmlinuz` in a layer compressed with
/// `compression`, after a layer of modules. Everything but the token
/// endpoint answers 401 with a Bearer challenge unless asked with the token.
pub(crate) fn oci_registry(repo: &str, tag: &str, kernel: &[u8], compression: &str) -> Registry {
    let mut blobs: Vec<(String, Vec<u8>, &'static str)> = Vec::new();
    let mut add = |bytes: Vec<u8>, media: &'static str| {
        let digest = sha256_hex(&bytes);
        blobs.push((digest.clone(), bytes, media));
        digest
    };
    let layer_type = match compression {
        ".gz" => "application/vnd.oci.image.layer.v1.tar+gzip",
        ".zst" => "application/vnd.oci.image.layer.v1.tar+zstd",
        _ => "application/vnd.oci.image.layer.v1.tar",
    };
    let descriptor = |media: &str, digest: &str, size: usize| {
        format!(r#"{{"mediaType":"{media}","digest":"sha256:{digest}","size":{size}}}"#)
    };
    let mut image = |kernel: &[u8], arch: &str| {
        let modules = build_layer(
            compression,
            &[(
                "usr/lib/modules/6.1.0/extra/bpf_testmod.ko",
                b"\x7fELF module",
            )],
        );
        let boot = build_layer(
            compression,
            &[("boot/vmlinuz", kernel), ("boot/config", b"CONFIG_BPF=y\n")],
        );
        let config = format!(
            r#"{{"architecture":"{arch}","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}}}}"#
        );
        let (ml, bl, cl) = (modules.len(), boot.len(), config.len());
        let m = add(modules, layer_type);
        let b = add(boot, layer_type);
        let c = add(
            config.into_bytes(),
            "application/vnd.oci.image.config.v1+json",
        );
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[{},{}]}}"#,
            descriptor("application/vnd.oci.image.config.v1+json", &c, cl),
            descriptor(layer_type, &m, ml),
            descriptor(layer_type, &b, bl)
        );
        let len = manifest.len();
        (
            add(
                manifest.into_bytes(),
                "application/vnd.oci.image.manifest.v1+json",
            ),
            len,
        )
    };
    let (arm, arm_len) = image(&fake_bzimage(b"an arm64 decoy"), "arm64");
    let (amd, amd_len) = image(kernel, "amd64");
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{arm}","size":{arm_len},"platform":{{"architecture":"arm64","os":"linux"}}}},{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{amd}","size":{amd_len},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
    );
    let index_digest = add(
        index.into_bytes(),
        "application/vnd.oci.image.index.v1+json",
    );
    let (repo_owned, tag_owned, index_for_tag) =
        (repo.to_owned(), tag.to_owned(), index_digest.clone());
    let server = TestServer::with_handler(Arc::new(move |req, _, stream| {
        if req.path.starts_with("/token?") {
            return respond(stream, 200, &[], br#"{"token":"letmein"}"#);
        }
        if req.header("authorization") != Some("Bearer letmein") {
            let host = req.header("host").unwrap_or_default();
            let challenge = format!(
                r#"Bearer realm="http://{host}/token",service="test-registry",scope="repository:{repo_owned}:pull""#
            );
            return respond(stream, 401, &[("WWW-Authenticate", challenge)], b"{}");
        }
        let prefix = format!("/v2/{repo_owned}/");
        let Some(rest) = req.path.strip_prefix(&prefix) else {
            return respond(stream, 404, &[], b"");
        };
        let wanted = match rest.split_once('/') {
            Some(("manifests", r)) if r == tag_owned => index_for_tag.clone(),
            Some(("manifests" | "blobs", r)) => r.trim_start_matches("sha256:").to_owned(),
            _ => return respond(stream, 404, &[], b""),
        };
        match blobs.iter().find(|(d, _, _)| *d == wanted) {
            Some((_, bytes, media)) => {
                respond(stream, 200, &[("Content-Type", media.to_string())], bytes)
            }
            None => respond(stream, 404, &[], b""),
        }
    }));
    Registry {
        reference: format!("{}/{repo}:{tag}", server.addr()),
        server,
        index_digest,
    }
}
