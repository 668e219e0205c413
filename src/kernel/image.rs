//! What a bzImage's setup header says about the kernel: its release.

use std::io::{self, Read};

use super::sniff;

/// Where the setup header keeps the offset (minus 0x200) of the kernel
/// version string (Documentation/arch/x86/boot.rst, field `kernel_version`).
const KERNEL_VERSION_FIELD: usize = 0x20e;
/// The boot protocol version; `kernel_version` is valid from 2.00 on.
const PROTOCOL_VERSION_FIELD: usize = 0x206;

/// The release (`uname -r`) of a bzImage, read from its setup header without
/// booting it: the first word of the version string, e.g. "6.1.0-47-cloud-amd64"
/// from "6.1.0-47-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP ...".
/// `None` when the file is not a bzImage or carries no version string.
pub fn release_of(path: &std::path::Path) -> io::Result<Option<String>> {
    let mut file = std::fs::File::open(path)?;
    let mut setup = Vec::new();
    // The setup code is at most 64 KiB (setup_sects is one byte of 512-byte sectors).
    (&mut file).take(0x10000 + 0x200).read_to_end(&mut setup)?;
    Ok(release_from_setup(&setup))
}

fn release_from_setup(setup: &[u8]) -> Option<String> {
    if !sniff::is_bzimage(setup) {
        return None;
    }
    let u16_at = |at: usize| Some(u16::from_le_bytes(setup.get(at..at + 2)?.try_into().ok()?));
    if u16_at(PROTOCOL_VERSION_FIELD)? < 0x0200 {
        return None;
    }
    let offset = usize::from(u16_at(KERNEL_VERSION_FIELD)?);
    if offset == 0 {
        return None;
    }
    let text = setup.get(offset + 0x200..)?;
    let text = &text[..text
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(text.len())
        .min(256)];
    let release = std::str::from_utf8(text).ok()?.split_whitespace().next()?;
    (!release.is_empty() && release.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| release.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfcompat_testkit::kernels::{fake_bzimage, kernels_dir, K510, K61, K612, K72, TINY};

    #[test]
    fn the_release_is_read_from_the_setup_header() {
        let dir = kernels_dir();
        for (name, release) in [
            (K510.file, "5.10.0-46-cloud-amd64"),
            (K61.file, "6.1.0-47-cloud-amd64"),
            (K612.file, "6.12.107+deb13-cloud-amd64"),
            (TINY.file, "6.1.192"),
        ] {
            assert_eq!(
                release_of(&dir.join(name)).unwrap().as_deref(),
                Some(release),
                "{name}"
            );
        }
        assert_eq!(release_of(&dir.join(K72.file)).unwrap(), None);
        // A fake image whose header points nowhere has no release.
        assert_eq!(release_from_setup(&fake_bzimage(b"x")), None);
    }
}
