//! What a kernel offers BPF, from its own BTF (read out of its image, see
//! `kernel::vmlinux`) or, without BTF, from its release: the enums of the
//! UAPI (`bpf_func_id`, `bpf_map_type`, `bpf_prog_type`,
//! `bpf_attach_type`), its functions and types by name.

use std::collections::HashMap;

use super::version::Version;
use crate::btf::{
    Btf, Member, Type, KIND_ENUM, KIND_ENUM64, KIND_FUNC, KIND_STRUCT, KIND_TYPEDEF, KIND_UNION,
};

/// One kernel, as the preflight sees it.
pub struct KernelFacts<'a> {
    /// From the release string; `None` when unknown.
    pub version: Option<Version>,
    /// `None`: the kernel has no BTF.
    pub btf: Option<KernelBtf<'a>>,
    /// Without BTF: what its image shows it has.
    pub features: Option<crate::kernel::Features>,
    /// Its `.config`, when one comes with it (see `kernel::kconfig`).
    pub config: Option<&'a crate::kernel::KernelConfig>,
    /// A module tree comes with it: functions and types may be in modules,
    /// whose BTF is not read here.
    pub modules: bool,
}

/// A kernel's BTF, indexed by name.
pub struct KernelBtf<'a> {
    btf: Btf<'a>,
    by_name: HashMap<&'a str, Vec<u32>>,
    /// The map flags' enum (see [`KernelBtf::map_flag_names`]).
    flags_enum: std::sync::OnceLock<Vec<&'a str>>,
}

impl<'a> KernelBtf<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<KernelBtf<'a>, String> {
        let btf = Btf::parse(bytes, cfg!(target_endian = "little"))?;
        let mut by_name: HashMap<&'a str, Vec<u32>> = HashMap::with_capacity(btf.types.len() / 2);
        for (id, t) in btf.types.iter().enumerate() {
            let name = btf.name(t.name_off);
            if !name.is_empty() {
                by_name.entry(name).or_default().push(id as u32);
            }
        }
        Ok(KernelBtf {
            btf,
            by_name,
            flags_enum: std::sync::OnceLock::new(),
        })
    }

    /// The types named `name` of one of `kinds`.
    fn named(&self, name: &str, kinds: &[u32]) -> impl Iterator<Item = &Type<'a>> + '_ {
        let kinds = kinds.to_vec();
        self.by_name
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|id| self.btf.get(*id))
            .filter(move |t| kinds.contains(&t.kind))
    }

    pub fn has_func(&self, name: &str) -> bool {
        self.named(name, &[KIND_FUNC]).next().is_some()
    }

    pub fn has_typedef(&self, name: &str) -> bool {
        self.named(name, &[KIND_TYPEDEF]).next().is_some()
    }

    /// The enumerators of the enum `name` (every enum of that name).
    pub fn enumerators(&self, name: &str) -> Vec<(&'a str, i64)> {
        self.named(name, &[KIND_ENUM, KIND_ENUM64])
            .flat_map(|t| self.btf.members(t))
            .map(
                |Member {
                     name_off,
                     type_or_value,
                 }| (self.btf.name(name_off), type_or_value),
            )
            .collect()
    }

    /// The map flags this kernel names: the UAPI's anonymous enum with
    /// `BPF_F_NO_PREALLOC`, found once and kept; empty when its BTF lacks it.
    pub fn map_flag_names(&self) -> &[&'a str] {
        let member = crate::object::MAP_FLAGS[0];
        self.flags_enum.get_or_init(|| {
            self.btf
                .types
                .iter()
                .filter(|t| matches!(t.kind, KIND_ENUM | KIND_ENUM64))
                .map(|t| self.btf.members(t))
                .find(|ms| ms.iter().any(|m| self.btf.name(m.name_off) == member))
                .map(|ms| ms.iter().map(|m| self.btf.name(m.name_off)).collect())
                .unwrap_or_default()
        })
    }

    /// Whether a type of this BTF kind and name exists (`struct`, `union`,
    /// `enum`, `typedef`, ...; an enum matches enum64 too).
    pub fn has_type(&self, kind: &str, name: &str) -> bool {
        self.named(name, &kinds_for(kind)).next().is_some()
    }

    /// Whether some composite `name` of that kind reaches the member path
    /// `path` (`se.vruntime`), looking through anonymous members as CO-RE
    /// does.
    pub fn has_field(&self, kind: &str, name: &str, path: &str) -> bool {
        let steps: Vec<&str> = path.split('.').collect();
        self.named(name, &kinds_for(kind))
            .any(|t| self.walk(t, &steps, 0))
    }

    fn walk(&self, t: &Type<'a>, steps: &[&str], depth: u32) -> bool {
        let Some((first, rest)) = steps.split_first() else {
            return true;
        };
        if depth > 32 {
            return false;
        }
        self.btf.members(t).into_iter().any(|m| {
            let name = self.btf.name(m.name_off);
            let Some(inner) = self.composite(m.type_or_value as u32) else {
                return name == *first && rest.is_empty();
            };
            if name.is_empty() {
                // An anonymous struct or union: its members are the parent's.
                self.walk(inner, steps, depth + 1)
            } else {
                name == *first && (rest.is_empty() || self.walk(inner, rest, depth + 1))
            }
        })
    }

    /// The struct or union a member's type is (through typedefs, modifiers
    /// and arrays).
    fn composite(&self, id: u32) -> Option<&Type<'a>> {
        let mut id = self.btf.resolve(id);
        for _ in 0..8 {
            let t = self.btf.get(id)?;
            match t.kind {
                KIND_STRUCT | KIND_UNION => return Some(t),
                crate::btf::KIND_ARRAY => {
                    id = self
                        .btf
                        .resolve(crate::btf::u32_at(t.extra, 0, self.btf.little).ok()?)
                }
                _ => return None,
            }
        }
        None
    }

    /// Functions tagged `bpf_kfunc` (kernels built with pahole's
    /// decl_tag_kfuncs, 6.9 on), with how many there are.
    pub fn kfunc_count(&self) -> usize {
        self.btf
            .types
            .iter()
            .filter(|t| {
                t.kind == crate::btf::KIND_DECL_TAG && self.btf.name(t.name_off) == "bpf_kfunc"
            })
            .count()
    }

    /// How many types of each of a few kinds it has, for `kernels inspect`.
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |k: u32| self.btf.types.iter().filter(|t| t.kind == k).count();
        (
            self.btf.types.len() - 1,
            count(KIND_FUNC),
            count(KIND_STRUCT),
        )
    }
}

fn kinds_for(kind: &str) -> Vec<u32> {
    match kind {
        "struct" => vec![KIND_STRUCT],
        "union" => vec![KIND_UNION],
        "enum" | "enum64" => vec![KIND_ENUM, KIND_ENUM64],
        "typedef" => vec![KIND_TYPEDEF],
        "func" => vec![KIND_FUNC],
        // int, float and the like: matched by name alone.
        _ => vec![crate::btf::KIND_INT, crate::btf::KIND_FLOAT],
    }
}
