//! CO-RE relocations (`.BTF.ext`): what each one asks of the kernel's BTF,
//! named: `struct task_struct` field `se.vruntime`, `enum bpf_func_id`
//! value `BPF_FUNC_loop`, and whether the object guards it with a
//! `bpf_core_*_exists` check of the same thing.

use std::collections::BTreeSet;

use crate::btf::{self, u32_at, Btf, KIND_ARRAY, KIND_STRUCT, KIND_UNION};
use crate::report::inspection::CoreRelocation;

/// libbpf's `enum bpf_core_relo_kind`, by value, as libbpf names them.
const KINDS: [&str; 13] = [
    "byte_off",
    "byte_sz",
    "field_exists",
    "signed",
    "lshift_u64",
    "rshift_u64",
    "local_type_id",
    "target_type_id",
    "type_exists",
    "type_size",
    "enumval_exists",
    "enumval_value",
    "type_matches",
];

/// Kinds that ask whether something exists: they never fail a load (the
/// answer is 0 or 1) and guard the others.
const GUARDS: [&str; 4] = [
    "field_exists",
    "type_exists",
    "enumval_exists",
    "type_matches",
];

/// One record of `.BTF.ext`'s CO-RE section.
pub(super) struct Record {
    /// The code section it patches.
    pub section: String,
    /// Byte offset of the patched instruction in that section.
    pub insn_off: u32,
    pub relocation: CoreRelocation,
}

/// Every CO-RE record, resolved against the object's own BTF. `program` is
/// left empty for the caller, which knows where functions start.
pub(super) fn records(ext: &[u8], btf: &Btf<'_>, little: bool) -> Result<Vec<Record>, String> {
    let hdr_len = u32_at(ext, 4, little)? as usize;
    if hdr_len < 32 {
        return Ok(Vec::new()); // a header without the core_relo fields
    }
    let off = u32_at(ext, 24, little)? as usize;
    let len = u32_at(ext, 28, little)? as usize;
    if len == 0 {
        return Ok(Vec::new());
    }
    let base = hdr_len + off;
    let end = base + len;
    if end > ext.len() {
        return Err("CO-RE relocation section runs past the end".into());
    }
    let rec_size = u32_at(ext, base, little)? as usize;
    if rec_size < 16 {
        return Err(format!("CO-RE record size {rec_size} is below 16"));
    }
    let mut out = Vec::new();
    let mut pos = base + 4;
    while pos + 8 <= end {
        let section = btf.name(u32_at(ext, pos, little)?).to_owned();
        let n = u32_at(ext, pos + 4, little)? as usize;
        pos += 8;
        for _ in 0..n {
            let field = |i: usize| u32_at(ext, pos + 4 * i, little);
            let (insn_off, type_id, access, kind) = (field(0)?, field(1)?, field(2)?, field(3)?);
            out.push(Record {
                section: section.clone(),
                insn_off,
                relocation: describe(btf, type_id, btf.name(access), kind)?,
            });
            pos += rec_size;
        }
    }
    Ok(out)
}

/// Names what one relocation reaches: its root type, and the member path
/// (fields) or enumerator its access string walks to.
fn describe(
    btf: &Btf<'_>,
    type_id: u32,
    access: &str,
    kind: u32,
) -> Result<CoreRelocation, String> {
    let kind_name = KINDS
        .get(kind as usize)
        .ok_or_else(|| format!("unknown CO-RE relocation kind {kind}"))?;
    let root = btf.skip_modifiers(type_id);
    let t = btf
        .get(root)
        .ok_or_else(|| format!("CO-RE relocation of type id {type_id}, past the object's BTF"))?;
    let indices: Vec<usize> = access
        .split(':')
        .map(|i| {
            i.parse()
                .map_err(|_| format!("CO-RE access string {access:?}"))
        })
        .collect::<Result<_, _>>()?;
    let member = match kind {
        0..=5 => field_path(btf, root, &indices[1..]),
        10 | 11 => btf
            .members(t)
            .get(indices[0])
            .map(|m| btf.name(m.name_off).to_owned()),
        _ => None,
    };
    Ok(CoreRelocation {
        program: String::new(),
        kind: (*kind_name).to_owned(),
        type_kind: btf::kind_name(t.kind).to_owned(),
        type_name: btf::essential_name(btf.name(t.name_off)).to_owned(),
        member,
        guarded: GUARDS.contains(kind_name),
    })
}

/// The named members an access string walks through, joined by dots
/// (anonymous structs and unions on the way have no name to match, and the
/// kernel's are looked through the same way).
fn field_path(btf: &Btf<'_>, mut id: u32, steps: &[usize]) -> Option<String> {
    let mut names = Vec::new();
    for &step in steps {
        let t = btf.get(btf.resolve(id))?;
        match t.kind {
            KIND_STRUCT | KIND_UNION => {
                let m = btf.members(t).into_iter().nth(step)?;
                let name = btf.name(m.name_off);
                if !name.is_empty() {
                    names.push(name);
                }
                id = m.type_or_value as u32;
            }
            KIND_ARRAY => id = u32_at(t.extra, 0, btf.little).ok()?,
            _ => return None,
        }
    }
    (!names.is_empty()).then(|| names.join("."))
}

/// Marks what a guard covers: a relocation is guarded when its program
/// also asks whether its type, or any member of it, exists. Loaders pick
/// between a field's old and new names that way (`if
/// (bpf_core_field_exists(t->__state)) ... else ... t->state`): the branch
/// a kernel cannot resolve is dead code the verifier never reaches.
pub(super) fn mark_guarded(relocations: &mut [CoreRelocation]) {
    let guards: BTreeSet<(String, String)> = relocations
        .iter()
        .filter(|r| r.guarded)
        .map(|r| (r.program.clone(), r.type_name.clone()))
        .collect();
    for r in relocations.iter_mut() {
        r.guarded |= guards.contains(&(r.program.clone(), r.type_name.clone()));
    }
}
