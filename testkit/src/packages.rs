//! Packages built on the spot, byte for byte: Debian packages, RPMs, cpio
//! archives and image layers, compressed as each test needs, and able to
//! hold what no real builder would write (unsafe paths, several kernels).

use std::io::Write;

pub struct TarEntry {
    path: String,
    kind: tar::EntryType,
    data: Vec<u8>,
    link: Option<String>,
}

impl TarEntry {
    pub fn file(path: &str, data: &[u8]) -> Self {
        Self {
            path: path.to_owned(),
            kind: tar::EntryType::Regular,
            data: data.to_vec(),
            link: None,
        }
    }

    pub fn dir(path: &str) -> Self {
        Self {
            path: path.to_owned(),
            kind: tar::EntryType::Directory,
            data: Vec::new(),
            link: None,
        }
    }

    pub fn symlink(path: &str, target: &str) -> Self {
        Self {
            path: path.to_owned(),
            kind: tar::EntryType::Symlink,
            data: Vec::new(),
            link: Some(target.to_owned()),
        }
    }

    pub fn hard_link(path: &str, target: &str) -> Self {
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
fn build_cpio(files: &[(&str, &[u8])]) -> Vec<u8> {
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
pub fn build_rpm(compression: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
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
pub fn build_deb(compression: &str, entries: &[TarEntry]) -> Vec<u8> {
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

/// A tarball (".gz", ".zst" or "" compressed) holding `files`, as an image
/// layer.
pub fn build_layer(compression: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let entries: Vec<TarEntry> = files.iter().map(|(p, d)| TarEntry::file(p, d)).collect();
    compress(compression, build_tar(&entries))
}
