//! BTF, the BPF Type Format (Documentation/bpf/btf.rst), read as a table of
//! types and a string section: one reader for an object's `.BTF` (its maps,
//! globals and CO-RE relocations, `object`) and a kernel's (what it offers,
//! `predict`).

/// The header's magic, in the file's byte order.
const MAGIC: u16 = 0xeb9f;

pub const KIND_INT: u32 = 1;
pub const KIND_PTR: u32 = 2;
pub const KIND_ARRAY: u32 = 3;
pub const KIND_STRUCT: u32 = 4;
pub const KIND_UNION: u32 = 5;
pub const KIND_ENUM: u32 = 6;
pub const KIND_FWD: u32 = 7;
pub const KIND_TYPEDEF: u32 = 8;
pub const KIND_FUNC: u32 = 12;
pub const KIND_FUNC_PROTO: u32 = 13;
pub const KIND_VAR: u32 = 14;
pub const KIND_DATASEC: u32 = 15;
pub const KIND_FLOAT: u32 = 16;
pub const KIND_DECL_TAG: u32 = 17;
pub const KIND_TYPE_TAG: u32 = 18;
pub const KIND_ENUM64: u32 = 19;

/// A kind's name as libbpf and bpftool print it.
pub fn kind_name(kind: u32) -> &'static str {
    match kind {
        0 => "void",
        KIND_INT => "int",
        KIND_PTR => "ptr",
        KIND_ARRAY => "array",
        KIND_STRUCT => "struct",
        KIND_UNION => "union",
        KIND_ENUM => "enum",
        KIND_FWD => "fwd",
        KIND_TYPEDEF => "typedef",
        9 => "volatile",
        10 => "const",
        11 => "restrict",
        KIND_FUNC => "func",
        KIND_FUNC_PROTO => "func_proto",
        KIND_VAR => "var",
        KIND_DATASEC => "datasec",
        KIND_FLOAT => "float",
        KIND_DECL_TAG => "decl_tag",
        KIND_TYPE_TAG => "type_tag",
        KIND_ENUM64 => "enum64",
        _ => "unknown",
    }
}

pub fn u32_at(d: &[u8], off: usize, little: bool) -> Result<u32, String> {
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

/// One BTF type: kind, name offset, size/type, and its trailing data.
pub struct Type<'a> {
    pub kind: u32,
    pub vlen: usize,
    pub name_off: u32,
    pub size_or_type: u32,
    pub extra: &'a [u8],
}

/// A BTF blob, parsed into its types (id 0 is void).
pub struct Btf<'a> {
    pub types: Vec<Type<'a>>,
    strings: &'a [u8],
    pub little: bool,
}

/// One member of a struct or union, or one value of an enum.
pub struct Member {
    pub name_off: u32,
    /// A member's type id; an enumerator's value.
    pub type_or_value: i64,
}

impl<'a> Btf<'a> {
    pub fn parse(btf: &'a [u8], little: bool) -> Result<Btf<'a>, String> {
        let magic = btf.get(..2).ok_or("shorter than a BTF header")?;
        let magic = if little {
            u16::from_le_bytes([magic[0], magic[1]])
        } else {
            u16::from_be_bytes([magic[0], magic[1]])
        };
        if magic != MAGIC {
            return Err(format!("bad magic {magic:#x}, not BTF"));
        }
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
            types: parse_types(types, little)?,
            strings,
            little,
        })
    }

    /// The string at `off` ("" when out of bounds or not UTF-8).
    pub fn name(&self, off: u32) -> &'a str {
        self.strings
            .get(off as usize..)
            .and_then(|s| s.split(|&b| b == 0).next())
            .and_then(|s| std::str::from_utf8(s).ok())
            .unwrap_or("")
    }

    pub fn get(&self, id: u32) -> Option<&Type<'a>> {
        self.types.get(id as usize)
    }

    /// Skips typedef/volatile/const/restrict/type_tag.
    pub fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.get(id) {
                Some(t) if matches!(t.kind, KIND_TYPEDEF..=11 | KIND_TYPE_TAG) => {
                    id = t.size_or_type
                }
                _ => break,
            }
        }
        id
    }

    /// Skips volatile/const/restrict/type_tag but not typedefs: what CO-RE
    /// matches by name.
    pub fn skip_modifiers(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.get(id) {
                Some(t) if matches!(t.kind, 9..=11 | KIND_TYPE_TAG) => id = t.size_or_type,
                _ => break,
            }
        }
        id
    }

    /// The members of a struct or union, or the values of an enum or
    /// enum64; nothing for other kinds.
    pub fn members(&self, t: &Type<'a>) -> Vec<Member> {
        let stride = match t.kind {
            KIND_STRUCT | KIND_UNION | KIND_ENUM64 => 12,
            KIND_ENUM => 8,
            _ => return Vec::new(),
        };
        (0..t.vlen)
            .filter_map(|i| {
                let at = i * stride;
                let name_off = u32_at(t.extra, at, self.little).ok()?;
                let word = u32_at(t.extra, at + 4, self.little).ok()?;
                let type_or_value = match t.kind {
                    KIND_ENUM => i64::from(word as i32),
                    KIND_ENUM64 => {
                        let hi = u32_at(t.extra, at + 8, self.little).ok()?;
                        ((u64::from(hi) << 32) | u64::from(word)) as i64
                    }
                    _ => i64::from(word),
                };
                Some(Member {
                    name_off,
                    type_or_value,
                })
            })
            .collect()
    }
}

fn parse_types(types: &[u8], little: bool) -> Result<Vec<Type<'_>>, String> {
    let mut out = vec![Type {
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
            KIND_INT => 4,
            KIND_ARRAY => 12,
            KIND_STRUCT | KIND_UNION => vlen * 12,
            KIND_ENUM => vlen * 8,
            KIND_FUNC_PROTO => vlen * 8,
            KIND_VAR => 4,
            KIND_DATASEC => vlen * 12,
            KIND_DECL_TAG => 4,
            KIND_ENUM64 => vlen * 12,
            KIND_PTR | KIND_FWD..=KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
            k => return Err(format!("unknown BTF kind {k}")),
        };
        let start = pos + 12;
        let extra = types
            .get(start..start + extra_len)
            .ok_or("BTF type section truncated")?;
        out.push(Type {
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

/// CO-RE's essential name: without a `___flavour` suffix
/// (`task_struct___old` matches the kernel's `task_struct`).
pub fn essential_name(name: &str) -> &str {
    name.find("___").map_or(name, |i| &name[..i])
}
