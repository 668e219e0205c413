//! Which file inside a package or image is the kernel, and taking it out.
//!
//! Every container format (a `.deb`'s data tarball, an `.rpm`'s cpio payload,
//! an OCI image's layers) is read front to back once; each entry is offered to
//! a [`Picker`], which writes the first kernel image it is offered into a temp
//! file and lists every other candidate, so an ambiguous package is an error
//! rather than a guess. `kernel_path:` in the matrix names the one to take.

use std::io::{self, BufWriter, Read, Seek, Write};

use tempfile::NamedTempFile;

use super::error::KernelError;
use super::hash::HashingWriter;
use super::sniff;

/// No kernel image is anywhere near this; a bigger entry is not one.
const MAX_IMAGE_BYTES: u64 = 1 << 30;

/// Where each kind of container keeps its kernel image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Debian and Ubuntu packages.
    Deb,
    /// RHEL-family, Amazon Linux and SUSE packages: RHEL 8+ ship the image in
    /// `lib/modules/*/vmlinuz` (`/boot/vmlinuz-*` is a %ghost made at install).
    Rpm,
    /// Container images such as ghcr.io/cilium/ci-kernels (`boot/vmlinuz`).
    Oci,
}

impl Layout {
    /// What is looked for, for messages.
    pub(crate) fn looked_for(self) -> &'static str {
        match self {
            Layout::Deb => "boot/vmlinuz-* or usr/lib/modules/*/vmlinuz",
            Layout::Rpm => "boot/vmlinuz-*, lib/modules/*/vmlinuz or usr/lib/modules/*/vmlinuz",
            Layout::Oci => {
                "boot/vmlinuz, boot/vmlinuz-*, boot/bzImage, lib/modules/*/vmlinuz or usr/lib/modules/*/vmlinuz"
            }
        }
    }

    /// Whether `path` (as written in the archive) is a kernel image's name.
    pub(crate) fn is_kernel_name(self, path: &str) -> bool {
        let parts = components(path);
        let versioned = |file: &str| file.len() > "vmlinuz-".len() && file.starts_with("vmlinuz-");
        match (self, parts.as_slice()) {
            (_, ["boot", file]) if versioned(file) => true,
            (_, ["usr", "lib", "modules", _, "vmlinuz"]) => true,
            (Layout::Rpm | Layout::Oci, ["lib", "modules", _, "vmlinuz"]) => true,
            (Layout::Oci, ["boot", "vmlinuz" | "bzImage"]) => true,
            _ => false,
        }
    }
}

/// `./a//b/` → `["a", "b"]`: how archives and users may spell one path.
fn components(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

/// A path in its normal form (`boot/vmlinuz-1`), for comparing with
/// `kernel_path:`.
pub(crate) fn normalise(path: &str) -> String {
    components(path).join("/")
}

/// Absolute, or with a `..` component.
pub(crate) fn is_unsafe_path(path: &[u8]) -> bool {
    path.starts_with(b"/") || path.split(|&b| b == b'/').any(|c| c == b"..")
}

/// The kernel image taken out of a package: still a temp file, not yet in the
/// cache.
pub(crate) struct Extracted {
    pub(crate) file: NamedTempFile,
    /// sha256 of the image.
    pub(crate) sha256: String,
    /// Its name in the package, as written there.
    pub(crate) entry: String,
}

/// Collects the kernel image while a container is read.
pub(crate) struct Picker<'a> {
    origin: &'a str,
    layout: Layout,
    /// `kernel_path:` from the matrix, normalised.
    wanted: Option<String>,
    out: Option<NamedTempFile>,
    extracted: Option<Extracted>,
    /// Every regular file that looks like a kernel image, as named there.
    candidates: Vec<String>,
    /// Entries with a kernel image's name that are not regular files.
    ignored: Vec<String>,
}

impl<'a> Picker<'a> {
    pub(crate) fn new(
        origin: &'a str,
        layout: Layout,
        kernel_path: Option<&str>,
        out: NamedTempFile,
    ) -> Self {
        Self {
            origin,
            layout,
            wanted: kernel_path.map(normalise),
            out: Some(out),
            extracted: None,
            candidates: Vec::new(),
            ignored: Vec::new(),
        }
    }

    /// Whether the entry `path` is (by its name) the image we are after.
    pub(crate) fn wants(&self, path: &str) -> bool {
        match &self.wanted {
            Some(wanted) => normalise(path) == *wanted,
            None => self.layout.is_kernel_name(path),
        }
    }

    /// Offer an entry that [`Picker::wants`]. `named` names it in errors
    /// (with its archive member); `regular` says whether it is a regular file.
    pub(crate) fn offer(
        &mut self,
        path: &str,
        named: String,
        regular: bool,
        size: u64,
        data: &mut impl Read,
    ) -> Result<(), KernelError> {
        if !regular {
            self.ignored.push(path.to_owned());
            return Ok(());
        }
        // A later layer of an image replaces a file of an earlier one.
        let same = |e: &Extracted| normalise(&e.entry) == normalise(path);
        let file = match self.extracted.take() {
            Some(previous) if same(&previous) => Some(previous.file),
            previous => {
                self.extracted = previous;
                self.candidates.push(path.to_owned());
                self.out.take()
            }
        };
        let Some(file) = file else {
            return Ok(()); // Another candidate: listed, reported by finish().
        };
        if size > MAX_IMAGE_BYTES {
            return Err(KernelError::ImageTooLarge {
                origin: self.origin.to_owned(),
                entry: named,
                limit: MAX_IMAGE_BYTES,
            });
        }
        self.extracted = Some(extract_entry(data, file, self.origin, named, path)?);
        Ok(())
    }

    /// The one image found in `container` (named in errors), or why not.
    pub(crate) fn finish(self, container: &str) -> Result<Extracted, KernelError> {
        if self.candidates.len() > 1 {
            return Err(KernelError::ManyKernels {
                origin: self.origin.to_owned(),
                candidates: self.candidates,
            });
        }
        self.extracted.ok_or_else(|| KernelError::NoKernel {
            origin: self.origin.to_owned(),
            container: container.to_owned(),
            looked_for: match &self.wanted {
                Some(path) => format!("{path} (the matrix's kernel_path)"),
                None => self.layout.looked_for().to_owned(),
            },
            ignored: if self.ignored.is_empty() {
                String::new()
            } else {
                format!(", ignored (not regular files): {}", self.ignored.join(", "))
            },
        })
    }
}

fn extract_entry(
    entry: &mut impl Read,
    mut file: NamedTempFile,
    origin: &str,
    name: String,
    path: &str,
) -> Result<Extracted, KernelError> {
    let read_err = |err| KernelError::PackageRead {
        origin: origin.to_owned(),
        entry: name.clone(),
        err,
    };
    let write_err = |path: &std::path::Path, err| KernelError::cache("write", path.to_owned(), err);
    let head = sniff::read_head(entry).map_err(read_err)?;
    if sniff::kernel_arch(&head).is_none() {
        return Err(KernelError::ImageNotBootable {
            origin: origin.to_owned(),
            entry: name,
            found: sniff::describe(&head),
        });
    }
    let tmp_path = file.path().to_owned();
    let f = file.as_file_mut();
    f.set_len(0).map_err(|e| write_err(&tmp_path, e))?;
    f.rewind().map_err(|e| write_err(&tmp_path, e))?;
    let mut w = HashingWriter::new(BufWriter::with_capacity(256 * 1024, &*f));
    w.write_all(&head).map_err(|e| write_err(&tmp_path, e))?;
    // Copy by hand to tell read errors (the package) from write errors (the cache).
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        w.write_all(&buf[..n])
            .map_err(|e| write_err(&tmp_path, e))?;
        if w.written() > MAX_IMAGE_BYTES {
            return Err(KernelError::ImageTooLarge {
                origin: origin.to_owned(),
                entry: name,
                limit: MAX_IMAGE_BYTES,
            });
        }
    }
    let (mut buffered, sha256) = w.finish();
    buffered.flush().map_err(|e| write_err(&tmp_path, e))?;
    drop(buffered);
    Ok(Extracted {
        file,
        sha256,
        entry: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_count_as_a_kernel_image() {
        let all = [Layout::Deb, Layout::Rpm, Layout::Oci];
        for yes in [
            "boot/vmlinuz-6.1.0-47-cloud-amd64",
            "./boot/vmlinuz-6.1.0-47-cloud-amd64",
            "usr/lib/modules/7.2.13+deb14-cloud-amd64/vmlinuz",
            "./usr/lib/modules/7.2.13+deb14-cloud-amd64/vmlinuz",
        ] {
            assert!(all.iter().all(|l| l.is_kernel_name(yes)), "{yes}");
        }
        for no in [
            "boot/vmlinuz-",
            "boot/System.map-6.1.0",
            "boot/config-6.1.0",
            "vmlinuz",
            "usr/lib/modules/6.1/kernel/vmlinuz",
            "usr/lib/modules/vmlinuz",
            "usr/share/doc/vmlinuz-1",
            "boot/vmlinux-6.1.gz",
        ] {
            assert!(!all.iter().any(|l| l.is_kernel_name(no)), "{no}");
        }
        // Only packages of the other families put it in these places.
        assert!(!Layout::Deb.is_kernel_name("lib/modules/6.1/vmlinuz"));
        assert!(Layout::Rpm.is_kernel_name("./lib/modules/4.18.0-513.el8.x86_64/vmlinuz"));
        assert!(!Layout::Deb.is_kernel_name("boot/vmlinuz"));
        assert!(!Layout::Rpm.is_kernel_name("boot/vmlinuz"));
        assert!(Layout::Oci.is_kernel_name("/boot/vmlinuz"));
        assert!(Layout::Oci.is_kernel_name("boot/bzImage"));

        assert!(is_unsafe_path(b"../etc/passwd"));
        assert!(is_unsafe_path(b"./usr/../../etc"));
        assert!(is_unsafe_path(b"/etc/passwd"));
        assert!(!is_unsafe_path(b"./usr/lib/..foo"));
        assert_eq!(normalise("/./boot//vmlinuz-1"), "boot/vmlinuz-1");
    }
}
