//! Just enough of BTF to read what an object asks for: the maps defined in
//! its `.maps` DATASEC, the global variables of its data sections, and the
//! count of CO-RE relocations in `.BTF.ext`.

use bpfcompat_proto::object::MapShape;

use super::libbpf::{map_type_name, MAP_TYPE_STRUCT_OPS};
use crate::report::inspection::{GlobalVar, MapSummary};

pub(super) fn u32_at(d: &[u8], off: usize, little: bool) -> Result<u32, String> {
    let b: [u8; 4] = d
        .get(off..off + 4)
        .ok_or_else(|| format!("truncated at offset {off}"))?
        .try_into()
        .expect("4 bytes");
    Ok(if little {
        u32::from_le_bytes(b)
    } else {
        u32::from_be_bytes(b)
    })
}

/// Number of CO-RE relocation records in `.BTF.ext`.
pub(super) fn core_relo_count(ext: &[u8], little: bool) -> Result<u64, String> {
    let hdr_len = u32_at(ext, 4, little)? as usize;
    if hdr_len < 32 {
        return Ok(0); // no core_relo fields in this header version
    }
    let off = u32_at(ext, 24, little)? as usize;
    let len = u32_at(ext, 28, little)? as usize;
    if len == 0 {
        return Ok(0);
    }
    let base = hdr_len + off;
    let end = base + len;
    if end > ext.len() {
        return Err("CO-RE relocation section runs past the end".into());
    }
    let rec_size = u32_at(ext, base, little)? as usize;
    if rec_size == 0 {
        return Err("zero CO-RE record size".into());
    }
    let mut pos = base + 4;
    let mut count = 0u64;
    while pos + 8 <= end {
        let n = u32_at(ext, pos + 4, little)? as usize;
        count += n as u64;
        pos += 8 + n * rec_size;
    }
    Ok(count)
}

/// One BTF type: kind, name offset, size/type, and its trailing data.
struct BtfType<'a> {
    kind: u32,
    vlen: usize,
    name_off: u32,
    size_or_type: u32,
    extra: &'a [u8],
}

fn btf_types(types: &[u8], little: bool) -> Result<Vec<BtfType<'_>>, String> {
    // Id 0 is void.
    let mut out = vec![BtfType {
        kind: 0,
        vlen: 0,
        name_off: 0,
        size_or_type: 0,
        extra: &[],
    }];
    let mut pos = 0;
    while pos + 12 <= types.len() {
        let name_off = u32_at(types, pos, little)?;
        let info = u32_at(types, pos + 4, little)?;
        let size_or_type = u32_at(types, pos + 8, little)?;
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        let extra_len = match kind {
            1 => 4,             // INT
            3 => 12,            // ARRAY
            4 | 5 => vlen * 12, // STRUCT, UNION
            6 => vlen * 8,      // ENUM
            13 => vlen * 8,     // FUNC_PROTO
            14 => 4,            // VAR
            15 => vlen * 12,    // DATASEC
            17 => 4,            // DECL_TAG
            19 => vlen * 12,    // ENUM64
            2 | 7..=12 | 16 | 18 => 0,
            k => return Err(format!("unknown BTF kind {k}")),
        };
        let start = pos + 12;
        let extra = types
            .get(start..start + extra_len)
            .ok_or("BTF type section truncated")?;
        out.push(BtfType {
            kind,
            vlen,
            name_off,
            size_or_type,
            extra,
        });
        pos = start + extra_len;
    }
    Ok(out)
}

/// An object's BTF, parsed just enough to walk its DATASECs.
pub(super) struct Btf<'a> {
    types: Vec<BtfType<'a>>,
    strings: &'a [u8],
    little: bool,
}

/// One variable of a DATASEC: its VAR type, offset and size in the section.
struct SecVar<'a, 'b> {
    var: &'b BtfType<'a>,
    offset: u32,
    size: u32,
}

impl<'a> Btf<'a> {
    pub(super) fn parse(btf: &'a [u8], little: bool) -> Result<Btf<'a>, String> {
        let hdr_len = u32_at(btf, 4, little)? as usize;
        let type_off = u32_at(btf, 8, little)? as usize;
        let type_len = u32_at(btf, 12, little)? as usize;
        let str_off = u32_at(btf, 16, little)? as usize;
        let str_len = u32_at(btf, 20, little)? as usize;
        let types = btf
            .get(hdr_len + type_off..hdr_len + type_off + type_len)
            .ok_or("type section out of bounds")?;
        let strings = btf
            .get(hdr_len + str_off..hdr_len + str_off + str_len)
            .ok_or("string section out of bounds")?;
        Ok(Btf {
            types: btf_types(types, little)?,
            strings,
            little,
        })
    }

    fn name(&self, off: u32) -> String {
        self.strings
            .get(off as usize..)
            .and_then(|s| s.split(|&b| b == 0).next())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .unwrap_or_default()
    }

    fn get(&self, id: u32) -> Option<&BtfType<'a>> {
        self.types.get(id as usize)
    }

    /// Skips typedef/volatile/const/restrict/type_tag.
    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.get(id) {
                Some(t) if matches!(t.kind, 8..=11 | 18) => id = t.size_or_type,
                _ => break,
            }
        }
        id
    }

    /// `__uint(name, N)` is `int (*name)[N]`: pointer to an array of N.
    fn uint_value(&self, member_type: u32) -> Option<u32> {
        let ptr = self.get(self.resolve(member_type))?;
        if ptr.kind != 2 {
            return None;
        }
        let arr = self.get(self.resolve(ptr.size_or_type))?;
        if arr.kind != 3 {
            return None;
        }
        u32_at(arr.extra, 8, self.little).ok()
    }

    /// Every DATASEC's name with its variables.
    fn datasecs(&self) -> Result<Vec<(String, Vec<SecVar<'a, '_>>)>, String> {
        let mut secs = Vec::new();
        for t in self.types.iter().filter(|t| t.kind == 15) {
            let mut vars = Vec::with_capacity(t.vlen);
            for i in 0..t.vlen {
                let var_id = u32_at(t.extra, i * 12, self.little)?;
                if let Some(var) = self.get(var_id).filter(|v| v.kind == 14) {
                    vars.push(SecVar {
                        var,
                        offset: u32_at(t.extra, i * 12 + 4, self.little)?,
                        size: u32_at(t.extra, i * 12 + 8, self.little)?,
                    });
                }
            }
            secs.push((self.name(t.name_off), vars));
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
                let name = self.name(var.name_off);
                maps.push(if struct_ops {
                    // libbpf shapes these from the kernel's type.
                    MapSummary {
                        name,
                        map_type: Some(MAP_TYPE_STRUCT_OPS),
                        map_type_name: Some("struct_ops".into()),
                        max_entries: Some(1),
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
        if let Some(def) = self.get(self.resolve(type_id)).filter(|d| d.kind == 4) {
            for m in 0..def.vlen {
                let member = self.name(u32_at(def.extra, m * 12, self.little)?);
                let mtype = u32_at(def.extra, m * 12 + 4, self.little)?;
                match member.as_str() {
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
            .filter(|t| t.kind == 2)?;
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
                    name: self.name(var.name_off),
                    section: sec.clone(),
                    offset,
                    size,
                });
            }
        }
        Ok(globals)
    }
}
