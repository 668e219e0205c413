//! The CPU architectures a kernel of the matrix can be: what each is called
//! by the matrix, Debian, RPM, OCI and Rust, and which QEMU runs it.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Arch {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Arm64];

    /// The architecture this program was built for: the host's.
    pub fn host() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Arm64
        } else {
            Arch::X86_64
        }
    }

    /// The matrix's `arch:` value: `x86_64` (or `amd64`, `x86`), `arm64`
    /// (or `aarch64`).
    pub fn parse(text: &str) -> Option<Arch> {
        match text {
            "x86_64" | "amd64" | "x86" | "x86-64" => Some(Arch::X86_64),
            "arm64" | "aarch64" => Some(Arch::Arm64),
            _ => None,
        }
    }

    /// Debian's name, in package file names and `apt-get download PKG:ARCH`.
    pub fn debian(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The OCI platform's `architecture`.
    pub fn oci(self) -> &'static str {
        self.debian()
    }

    /// `uname -m` in a guest, and the Rust target's first part.
    pub fn machine(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "aarch64",
        }
    }

    /// The word BPF builds use: `__TARGET_ARCH_x86`, bpf2go's `_x86_bpfel.o`;
    /// what `{arch}` in an `--artifact` path stands for.
    pub fn target_word(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86",
            Arch::Arm64 => "arm64",
        }
    }

    /// The QEMU that runs a guest of this architecture.
    pub fn qemu(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Arm64 => "qemu-system-aarch64",
        }
    }

    /// The Debian package that has [`Arch::qemu`].
    pub fn qemu_package(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86",
            Arch::Arm64 => "qemu-system-arm",
        }
    }

    /// The ELF `e_machine` of this architecture's programs.
    pub fn elf_machine(self) -> u16 {
        match self {
            Arch::X86_64 => 62,
            Arch::Arm64 => 183,
        }
    }

    /// The kernel console's device (`console=` on the command line).
    pub fn console(self) -> &'static str {
        match self {
            Arch::X86_64 => "ttyS0",
            Arch::Arm64 => "ttyAMA0",
        }
    }
}

/// The host's: what a matrix kernel without `arch:` is.
impl Default for Arch {
    fn default() -> Arch {
        Arch::host()
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_users_write_is_understood() {
        for (text, arch) in [
            ("x86_64", Arch::X86_64),
            ("amd64", Arch::X86_64),
            ("x86", Arch::X86_64),
            ("arm64", Arch::Arm64),
            ("aarch64", Arch::Arm64),
        ] {
            assert_eq!(Arch::parse(text), Some(arch), "{text}");
        }
        assert_eq!(Arch::parse("riscv64"), None);
        for arch in Arch::ALL {
            assert_eq!(Arch::parse(&arch.to_string()), Some(arch));
            assert_eq!(Arch::parse(arch.machine()), Some(arch));
            assert_eq!(Arch::parse(arch.debian()), Some(arch));
        }
    }
}
