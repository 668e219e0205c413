//! A kernel's build configuration (`CONFIG_*`), where one comes with it:
//! the `config-<release>` a distribution's package ships (`boot/` in a
//! `.deb`, `lib/modules/<release>/config` in an RPM), kept in the cache at
//! `btf/<image sha256>.config` when the package is extracted, or a matrix
//! entry's `config:` file. The preflight reads what BTF cannot say from it
//! (error injection, network namespaces).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::cache::KernelCache;
use super::error::KernelError;

/// The header `make` writes at the top of every whole `.config`: in one,
/// an option that is not there is off (its dependencies are not met).
const GENERATED: &str = "# Automatically generated file; DO NOT EDIT.";

/// A parsed `.config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelConfig {
    /// `CONFIG_X` → `y`, `m`, a number or a string; `n` for "is not set".
    options: HashMap<String, String>,
    /// Written by `make`: an absent option is off.
    whole: bool,
    /// The `Linux/<arch> <version>` line, if any: `6.1.170`.
    pub version: Option<String>,
}

impl KernelConfig {
    pub fn parse(text: &str) -> KernelConfig {
        let mut options = HashMap::new();
        let (mut version, mut whole) = (None, false);
        for line in text.lines().map(str::trim) {
            if line == GENERATED {
                whole = true;
            } else if let Some(rest) = line
                .strip_prefix("# CONFIG_")
                .and_then(|r| r.strip_suffix(" is not set"))
            {
                options.insert(format!("CONFIG_{rest}"), "n".to_owned());
            } else if let Some((name, value)) = line.split_once('=') {
                if name.starts_with("CONFIG_") {
                    options.insert(name.to_owned(), value.trim_matches('"').to_owned());
                }
            } else if let Some(rest) = line.strip_prefix("# Linux/") {
                version = rest
                    .split_whitespace()
                    .nth(1)
                    .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
                    .map(str::to_owned);
            }
        }
        KernelConfig {
            options,
            whole,
            version,
        }
    }

    /// Whether `name` (`CONFIG_NET_NS`) is built in or a module: `None`
    /// when this config does not say (a fragment without it).
    pub fn enabled(&self, name: &str) -> Option<bool> {
        match self.options.get(name).map(String::as_str) {
            Some("n") => Some(false),
            // y, m, or a value (a number, a string).
            Some(_) => Some(true),
            None => (self.whole).then_some(false),
        }
    }

    /// How many options it sets or unsets.
    pub fn len(&self) -> usize {
        self.options.len()
    }

    pub fn is_empty(&self) -> bool {
        self.options.is_empty()
    }
}

/// Whether a container entry is a kernel config: `boot/config-*` or
/// `[usr/]lib/modules/<release>/config`.
pub(crate) fn is_config_entry(path: &str) -> bool {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    match parts.as_slice() {
        ["boot", file] => file.starts_with("config-"),
        ["lib", "modules", _, "config"] | ["usr", "lib", "modules", _, "config"] => true,
        _ => false,
    }
}

/// Reads a matrix's `config:` file, refusing one that is not a kernel
/// config or is of another kernel series than `release`.
pub fn read_config_file(path: &Path, release: Option<&str>) -> Result<KernelConfig, KernelError> {
    let bad = |why: String| KernelError::BadConfig {
        path: path.to_owned(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let config = KernelConfig::parse(&text);
    if config.is_empty() {
        return Err(bad(
            "no CONFIG_ line in it: give the kernel's .config (its package's boot/config-*)".into(),
        ));
    }
    if let (Some(built), Some(release)) = (&config.version, release) {
        if series(built) != series(release) {
            return Err(bad(format!(
                "it configures Linux {built}, and this kernel is {release}: give its own config"
            )));
        }
    }
    Ok(config)
}

/// `6.1.170` and `6.1.0-47-cloud-amd64` → `6.1`.
fn series(version: &str) -> String {
    version
        .split(['.', '-', '+'])
        .take(2)
        .collect::<Vec<_>>()
        .join(".")
}

impl KernelCache {
    fn config_path(&self, image_sha256: &str) -> PathBuf {
        self.btf_dir().join(format!("{image_sha256}.config"))
    }

    /// Keep the config a package shipped beside the image `image_sha256`
    /// (written in `tmp/` and renamed into place).
    pub(crate) fn store_config(&self, image_sha256: &str, text: &[u8]) -> Result<(), KernelError> {
        let path = self.config_path(image_sha256);
        self.write_atomically(&path, text, "write the kernel's config to")
    }

    /// The config its package shipped with the image, if it did.
    pub fn kernel_config(&self, image_sha256: &str) -> Result<Option<KernelConfig>, KernelError> {
        let path = self.config_path(image_sha256);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(KernelConfig::parse(&text))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(KernelError::cache("read", path, err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfcompat_testkit::kernels::kernels_dir;

    #[test]
    fn a_whole_config_says_off_for_what_it_leaves_out() {
        let dir = kernels_dir().join("configs");
        let debian = KernelConfig::parse(
            &std::fs::read_to_string(dir.join("config-6.1.0-47-cloud-amd64")).unwrap(),
        );
        assert_eq!(debian.enabled("CONFIG_NET_NS"), Some(true));
        assert_eq!(
            debian.enabled("CONFIG_FUNCTION_ERROR_INJECTION"),
            Some(false)
        );
        assert_eq!(debian.enabled("CONFIG_BPF_SYSCALL"), Some(true));
        assert_eq!(debian.version.as_deref(), Some("6.1.170"));
        let tiny = KernelConfig::parse(
            &std::fs::read_to_string(dir.join("config-6.1.192-tiny-nobtf")).unwrap(),
        );
        // Not even "is not set": its dependencies are off.
        assert_eq!(tiny.enabled("CONFIG_NET_NS"), Some(false));
        // A fragment says only what it has.
        let fragment = KernelConfig::parse("CONFIG_BPF=y\n# CONFIG_NET_NS is not set\n");
        assert_eq!(fragment.enabled("CONFIG_NET_NS"), Some(false));
        assert_eq!(fragment.enabled("CONFIG_BPF"), Some(true));
        assert_eq!(fragment.enabled("CONFIG_KPROBES"), None);
    }

    #[test]
    fn a_config_file_of_another_series_or_none_at_all_is_refused() {
        let dir = kernels_dir().join("configs");
        let own = dir.join("config-6.12.107+deb13-cloud-amd64");
        assert!(read_config_file(&own, Some("6.12.107+deb13-cloud-amd64")).is_ok());
        let msg = read_config_file(&own, Some("5.10.0-46-cloud-amd64"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("it configures Linux 6.12.107, and this kernel is 5.10.0-46"),
            "{msg}"
        );
        let not = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(not.path(), "hello\n").unwrap();
        let msg = read_config_file(not.path(), None).unwrap_err().to_string();
        assert!(msg.contains("no CONFIG_ line"), "{msg}");
    }

    /// A package's own config is kept beside its image as it is
    /// extracted; a bare image has none, and a package without one (7.2's
    /// linux-binary) neither.
    #[test]
    fn packages_give_their_config_and_bare_images_none() {
        use crate::arch::Arch;
        use crate::kernel::{resolve, Options, Source};
        use bpfcompat_testkit::kernels::{Kernel, ARM64_61, K510, K61_DEB, K72};
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::new(dir.path().to_owned());
        let config_of = |k: &Kernel, arch: Arch| {
            let source = Source::File {
                path: k.path(),
                sha256: None,
                kernel_path: None,
            };
            let opts = Options {
                arch,
                ..Options::default()
            };
            let resolved = resolve(&cache, &source, &opts).unwrap();
            cache.kernel_config(&resolved.sha256).unwrap()
        };
        for (k, arch, version) in [
            (&K61_DEB, Arch::X86_64, "6.1.170"),
            (&ARM64_61, Arch::Arm64, "6.1.170"),
        ] {
            let config = config_of(k, arch).unwrap_or_else(|| panic!("{}: no config", k.id));
            assert_eq!(config.version.as_deref(), Some(version), "{}", k.id);
            assert_eq!(
                config.enabled("CONFIG_FUNCTION_ERROR_INJECTION"),
                Some(false)
            );
            assert_eq!(config.enabled("CONFIG_NET_NS"), Some(true));
        }
        assert_eq!(config_of(&K510, Arch::X86_64), None);
        assert_eq!(config_of(&K72, Arch::X86_64), None);
    }

    #[test]
    fn config_entries_are_recognised_where_packages_put_them() {
        assert!(is_config_entry("./boot/config-6.1.0-47-cloud-amd64"));
        assert!(is_config_entry("lib/modules/5.14.0-427.el9.x86_64/config"));
        assert!(is_config_entry("usr/lib/modules/7.2.13/config"));
        assert!(!is_config_entry("./boot/vmlinuz-6.1"));
        assert!(!is_config_entry("lib/modules/6.1/kernel/config"));
    }
}
