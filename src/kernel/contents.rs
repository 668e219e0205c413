//! What is taken out of a container while it is read: the kernel image
//! (through a [`Picker`]) and, beside it, the module tree (through a
//! [`Collector`]). Every container format offers each entry here.

use std::io::Read;

use tempfile::NamedTempFile;

use super::cache::KernelCache;
use super::error::KernelError;
use super::kconfig::is_config_entry;
use super::modtree::{Collected, Collector};
use super::pick::{Extracted, Layout, Picker};

/// What a container is read for.
pub(crate) struct Contents<'a> {
    /// `None` when only its modules are wanted (a modules package).
    picker: Option<Picker<'a>>,
    modules: Collector,
    /// The kernel's `.config`, when the container ships one.
    config: Option<Vec<u8>>,
    origin: &'a str,
}

/// Bigger than any kernel's `.config` (about 250 KB): not one.
const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// What a container gave.
pub(crate) struct Taken {
    /// `None` when only modules were wanted.
    pub(crate) kernel: Option<Extracted>,
    pub(crate) modules: Option<Collected>,
    pub(crate) config: Option<Vec<u8>>,
}

impl<'a> Contents<'a> {
    /// The kernel image (the one at `kernel_path` when given) and the modules.
    pub(crate) fn kernel(
        cache: &KernelCache,
        origin: &'a str,
        layout: Layout,
        kernel_path: Option<&str>,
        out: NamedTempFile,
    ) -> Result<Self, KernelError> {
        Ok(Contents {
            picker: Some(Picker::new(origin, layout, kernel_path, out)),
            modules: Collector::new(cache, origin)?,
            config: None,
            origin,
        })
    }

    /// Only the modules.
    pub(crate) fn modules(cache: &KernelCache, origin: &'a str) -> Result<Self, KernelError> {
        Ok(Contents {
            picker: None,
            modules: Collector::new(cache, origin)?,
            config: None,
            origin,
        })
    }

    /// Whether the entry `path` is wanted, by its name.
    pub(crate) fn wants(&self, path: &str) -> bool {
        self.picker.as_ref().is_some_and(|p| p.wants(path))
            || Collector::wants(path)
            || (self.picker.is_some() && is_config_entry(path))
    }

    /// Offer an entry that [`Contents::wants`] (see [`Picker::offer`]).
    pub(crate) fn offer(
        &mut self,
        path: &str,
        named: String,
        regular: bool,
        size: u64,
        data: &mut impl Read,
    ) -> Result<(), KernelError> {
        match &mut self.picker {
            Some(picker) if picker.wants(path) => picker.offer(path, named, regular, size, data),
            Some(_) if is_config_entry(path) => {
                if regular && size <= MAX_CONFIG_BYTES && self.config.is_none() {
                    let mut text = Vec::new();
                    data.read_to_end(&mut text)
                        .map_err(|err| KernelError::PackageRead {
                            origin: self.origin.to_owned(),
                            entry: named,
                            err,
                        })?;
                    self.config = Some(text);
                }
                Ok(())
            }
            _ => self.modules.offer(path, &named, regular, data),
        }
    }

    /// What was found in `container` (named in errors); a kernel that was
    /// wanted and not found is an error, modules are optional here.
    pub(crate) fn finish(self, container: &str) -> Result<Taken, KernelError> {
        let kernel = self.picker.map(|p| p.finish(container)).transpose()?;
        Ok(Taken {
            kernel,
            modules: self.modules.finish(),
            config: self.config,
        })
    }
}
