//! The real test kernels (in `shared/kernels`, or `$BPFCOMPAT_TEST_KERNELS`)
//! and what is known of each, and a fake one for tests that boot nothing.

use std::path::PathBuf;

pub struct Kernel {
    pub id: &'static str,
    /// Under [`kernels_dir`].
    pub file: &'static str,
    pub sha256: &'static str,
    pub release: &'static str,
    pub btf: bool,
}

impl Kernel {
    /// Its file under [`kernels_dir`].
    pub fn path(&self) -> PathBuf {
        kernels_dir().join(self.file)
    }

    /// Its file's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(self.path()).unwrap()
    }
}

pub const K510: Kernel = Kernel {
    id: "debian-11-5.10",
    file: "vmlinuz-5.10.0-46-cloud-amd64",
    sha256: "2e141d21dc8fa57e2ab27a7d3757c058d9405b5c27e86707497ce915cc615c1b",
    release: "5.10.0-46-cloud-amd64",
    btf: true,
};
pub const K61: Kernel = Kernel {
    id: "debian-12-6.1",
    file: "vmlinuz-6.1.0-47-cloud-amd64",
    sha256: "039bbfec6cae08dea0e6763b31b3880e620bf351ff13d2f2966b1ebf99f0d375",
    release: "6.1.0-47-cloud-amd64",
    btf: true,
};
pub const K612: Kernel = Kernel {
    id: "debian-13-6.12",
    file: "vmlinuz-6.12.107+deb13-cloud-amd64",
    sha256: "d1bc2c60a78ae6979736d081bc3c90e45ace6baf414f767dff588e319d3492bd",
    release: "6.12.107+deb13-cloud-amd64",
    btf: true,
};
/// A Debian package, not a bare image: its sha256 is the package's.
pub const K72: Kernel = Kernel {
    id: "debian-sid-7.2",
    file: "packages/linux-binary-7.2.13+deb14-cloud-amd64_7.2.13-1_amd64.deb",
    sha256: "03e41f1c34c16583462f029e81944a85ebcdb78098c258dedfa1cfdd680a27f8",
    release: "7.2.13+deb14-cloud-amd64",
    btf: true,
};
/// The smallest real kernel (2.3 MB): the fastest to boot, serve and hash.
pub const TINY: Kernel = Kernel {
    id: "tiny-6.1-nobtf",
    file: "vmlinuz-6.1.192-tiny-nobtf",
    sha256: "b8796455dc25bc3ab6a6610305d26b529b922890089dcde59005ea1b69ffec6f",
    release: "6.1.192",
    btf: false,
};
pub const ALL: [&Kernel; 5] = [&K510, &K61, &K612, &K72, &TINY];

/// The 6.1 kernel as Debian ships it: the package, with its modules
/// (uncompressed, under `lib/modules/`). Its image is [`K61`]'s.
pub const K61_DEB: Kernel = Kernel {
    id: "debian-12-6.1-deb",
    file: "packages/linux-image-6.1.0-47-cloud-amd64_6.1.170-3_amd64.deb",
    sha256: "139e51253b0d93db1ba3eb87707f76f3c5a7d83a50a5e5aacbda010ad21bd73a",
    release: "6.1.0-47-cloud-amd64",
    btf: true,
};

/// Debian's arm64 cloud kernels, as their packages (an uncompressed arm64
/// `Image` at `boot/vmlinuz-*`, modules under `lib/modules/`).
pub const ARM64_510: Kernel = Kernel {
    id: "debian-11-5.10-arm64",
    file: "arm64/linux-image-5.10.0-32-cloud-arm64_5.10.223-1_arm64.deb",
    sha256: "1b79a526115ffed1262a3bcb127e9596a6849ad4acc31aacbef93db0c9cf7352",
    release: "5.10.0-32-cloud-arm64",
    btf: true,
};
pub const ARM64_61: Kernel = Kernel {
    id: "debian-12-6.1-arm64",
    file: "arm64/linux-image-6.1.0-47-cloud-arm64_6.1.170-3_arm64.deb",
    sha256: "7fb763389f2e6fbbcf37f6b12d6dcc7be35aa2a2980abb32f4497afb4b7362bd",
    release: "6.1.0-47-cloud-arm64",
    btf: true,
};
pub const ARM64: [&Kernel; 2] = [&ARM64_510, &ARM64_61];

/// A package of modules only: the modules half of [`K72`] (xz-compressed,
/// under `usr/lib/modules/`).
pub struct Package {
    pub file: &'static str,
    pub sha256: &'static str,
}

impl Package {
    /// Its file under [`kernels_dir`].
    pub fn path(&self) -> PathBuf {
        kernels_dir().join(self.file)
    }
}

pub const MODULES_72: Package = Package {
    file: "packages/linux-modules-7.2.13+deb14-cloud-amd64_7.2.13-1_amd64.deb",
    sha256: "97d79546041e3fdfb44dccff180938894d1bf8eb298f091f88539c1b37080bef",
};

/// The test kernels: `$BPFCOMPAT_TEST_KERNELS`, by default `shared/kernels`
/// beside the project. Missing kernels fail the test: CI must never pass by
/// silently skipping the real thing.
pub fn kernels_dir() -> PathBuf {
    let dir = std::env::var_os("BPFCOMPAT_TEST_KERNELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/kernels"));
    for file in ALL
        .map(|k| k.file)
        .into_iter()
        .chain([K61_DEB.file, MODULES_72.file])
        .chain(ARM64.map(|k| k.file))
    {
        assert!(
            dir.join(file).is_file(),
            "test kernel {} is missing: these tests need the real kernels in shared/kernels; \
             set BPFCOMPAT_TEST_KERNELS to the folder that holds them",
            dir.join(file).display()
        );
    }
    dir
}

/// A minimal file that passes for a bzImage: boot signature and "HdrS".
pub fn fake_bzimage(payload: &[u8]) -> Vec<u8> {
    let mut image = vec![0u8; 0x400];
    image[0x1fe] = 0x55;
    image[0x1ff] = 0xaa;
    image[0x202..0x206].copy_from_slice(b"HdrS");
    image.extend_from_slice(payload);
    image
}
