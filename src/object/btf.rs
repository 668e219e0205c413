//! What an object's BTF says: the maps defined in its `.maps` DATASEC, the
//! global variables of its data sections, and the BTF kinds it uses.

use bpfcompat_proto::object::MapShape;

use crate::btf::{
    kind_name, u32_at, Btf, Type, KIND_ARRAY, KIND_DATASEC, KIND_DECL_TAG, KIND_ENUM64, KIND_FLOAT,
    KIND_PTR, KIND_STRUCT, KIND_TYPE_TAG, KIND_VAR,
};

use super::libbpf::{map_type_name, BPF_F_LINK, MAP_TYPE_STRUCT_OPS};
use crate::report::inspection::{GlobalVar, MapSummary};

/// One variable of a DATASEC: its VAR type, offset and size in the section.
struct SecVar<'a, 'b> {
    var: &'b Type<'a>,
    offset: u32,
    size: u32,
}

/// What an object's BTF says about its maps and globals.
impl<'a> Btf<'a> {
    /// `__uint(name, N)` is `int (*name)[N]`: pointer to an array of N.
    fn uint_value(&self, member_type: u32) -> Option<u32> {
        let ptr = self.get(self.resolve(member_type))?;
        if ptr.kind != KIND_PTR {
            return None;
        }
        let arr = self.get(self.resolve(ptr.size_or_type))?;
        if arr.kind != KIND_ARRAY {
            return None;
        }
        u32_at(arr.extra, 8, self.little).ok()
    }

    /// Every DATASEC's name with its variables.
    fn datasecs(&self) -> Result<Vec<(String, Vec<SecVar<'a, '_>>)>, String> {
        let mut secs = Vec::new();
        for t in self.types.iter().filter(|t| t.kind == KIND_DATASEC) {
            let mut vars = Vec::with_capacity(t.vlen);
            for i in 0..t.vlen {
                let var_id = u32_at(t.extra, i * 12, self.little)?;
                if let Some(var) = self.get(var_id).filter(|v| v.kind == KIND_VAR) {
                    vars.push(SecVar {
                        var,
                        offset: u32_at(t.extra, i * 12 + 4, self.little)?,
                        size: u32_at(t.extra, i * 12 + 8, self.little)?,
                    });
                }
            }
            secs.push((self.name(t.name_off).to_owned(), vars));
        }
        Ok(secs)
    }

    /// Maps defined in BTF: the `.maps` DATASEC (and struct_ops variables
    /// in `.struct_ops*`).
    pub(super) fn maps(&self) -> Result<Vec<MapSummary>, String> {
        let mut maps = Vec::new();
        for (sec, vars) in self.datasecs()? {
            let struct_ops = sec.starts_with(".struct_ops");
            if sec != ".maps" && !struct_ops {
                continue;
            }
            for SecVar { var, .. } in vars {
                let name = self.name(var.name_off).to_owned();
                maps.push(if struct_ops {
                    // libbpf shapes these from the kernel's type, and
                    // creates those of `.struct_ops.link` with BPF_F_LINK.
                    MapSummary {
                        name,
                        map_type: Some(MAP_TYPE_STRUCT_OPS),
                        map_type_name: Some("struct_ops".into()),
                        max_entries: Some(1),
                        map_flags: sec.starts_with(".struct_ops.link").then_some(BPF_F_LINK),
                        ..MapSummary::default()
                    }
                } else {
                    self.map_def(name, var.size_or_type)?
                });
            }
        }
        Ok(maps)
    }

    /// The map `name` defined by the struct of type `type_id`, read as
    /// libbpf reads it: `__uint(field, N)` members, `__type(key, T)` and
    /// `__type(value, T)` as T's size, `__array(values, ...)` as 4-byte
    /// values with an inner map.
    fn map_def(&self, name: String, type_id: u32) -> Result<MapSummary, String> {
        let mut map = MapSummary {
            name,
            ..MapSummary::default()
        };
        let mut inner_map = false;
        if let Some(def) = self
            .get(self.resolve(type_id))
            .filter(|d| d.kind == KIND_STRUCT)
        {
            for m in 0..def.vlen {
                let member = self.name(u32_at(def.extra, m * 12, self.little)?);
                let mtype = u32_at(def.extra, m * 12 + 4, self.little)?;
                match member {
                    "type" => map.map_type = self.uint_value(mtype),
                    "max_entries" => map.max_entries = self.uint_value(mtype),
                    "key_size" => map.key_size = self.uint_value(mtype),
                    "value_size" => map.value_size = self.uint_value(mtype),
                    "key" => map.key_size = self.pointee_size(mtype),
                    "value" => map.value_size = self.pointee_size(mtype),
                    "values" => {
                        map.value_size = Some(4);
                        inner_map = true;
                    }
                    "map_flags" => map.map_flags = self.uint_value(mtype),
                    _ => {}
                }
            }
        }
        map.map_type_name = map.map_type.and_then(map_type_name).map(str::to_owned);
        map.left_to_loader = MapShape {
            map_type: map.map_type.unwrap_or(0),
            key_size: map.key_size.unwrap_or(0),
            value_size: map.value_size.unwrap_or(0),
            max_entries: map.max_entries.unwrap_or(0),
            map_flags: map.map_flags.unwrap_or(0),
            inner_map,
        }
        .left_unset();
        Ok(map)
    }

    /// `__type(key, T)` is `T *key`: the size of T.
    fn pointee_size(&self, member_type: u32) -> Option<u32> {
        let ptr = self
            .get(self.resolve(member_type))
            .filter(|t| t.kind == KIND_PTR)?;
        self.size_of(ptr.size_or_type, 0)
    }

    /// The size of type `id` in bytes, if it has one.
    fn size_of(&self, id: u32, depth: u32) -> Option<u32> {
        let t = self.get(self.resolve(id)).filter(|_| depth < 32)?;
        match t.kind {
            // INT, STRUCT, UNION, ENUM, FLOAT, ENUM64: the size is theirs.
            1 | 4 | 5 | 6 | 16 | 19 => Some(t.size_or_type),
            2 => Some(8),
            3 => {
                let elem = u32_at(t.extra, 0, self.little).ok()?;
                let n = u32_at(t.extra, 8, self.little).ok()?;
                self.size_of(elem, depth + 1)?.checked_mul(n)
            }
            _ => None,
        }
    }

    /// The variables of the data sections a loader may set before load:
    /// `.rodata`, `.data`, `.bss` and their custom `.rodata.*`/`.data.*`
    /// kin (libbpf maps each to an internal map). Externs (`.kconfig`,
    /// `.ksyms`) are the kernel's to fill, not the loader's.
    pub(super) fn globals(&self) -> Result<Vec<GlobalVar>, String> {
        let mut globals = Vec::new();
        for (sec, vars) in self.datasecs()? {
            let data = [".rodata", ".data", ".bss"].contains(&sec.as_str())
                || sec.starts_with(".rodata.")
                || sec.starts_with(".data.");
            if !data {
                continue;
            }
            for SecVar { var, offset, size } in vars {
                globals.push(GlobalVar {
                    name: self.name(var.name_off).to_owned(),
                    section: sec.clone(),
                    offset,
                    size,
                });
            }
        }
        Ok(globals)
    }

    /// The kinds it uses that kernels before 5.13-6.0 do not know, which
    /// libbpf rewrites for them.
    pub(super) fn newer_kinds(&self) -> Vec<String> {
        [KIND_FLOAT, KIND_DECL_TAG, KIND_TYPE_TAG, KIND_ENUM64]
            .into_iter()
            .filter(|k| self.types.iter().any(|t| t.kind == *k))
            .map(|k| kind_name(k).to_owned())
            .collect()
    }
}
