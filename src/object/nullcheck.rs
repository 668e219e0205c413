//! One verifier rejection the instructions alone prove: a map lookup's
//! result dereferenced before any NULL check, on the straight path from a
//! program's first instruction that every run takes (no jump before the
//! lookup, none between it and the dereference). Every verifier refuses
//! it ("R0 invalid mem access 'map_value_or_null'"): `bpf_map_lookup_elem`
//! returns NULL for a missing key, and the verifier types its result so
//! until a comparison with zero.
//!
//! Only that path, so that nothing the verifier never walks is judged: code
//! past a branch may be dead to it (a `.rodata` knob, a constant), and a
//! copy spilled to the stack is not followed. Which maps can return NULL is
//! the caller's to say (newer verifiers prove some array lookups non-NULL).

/// `bpf_map_lookup_elem`'s helper id.
const MAP_LOOKUP_ELEM: i32 = 1;

const CLASS_LD: u8 = 0x00;
const CLASS_LDX: u8 = 0x01;
const CLASS_ST: u8 = 0x02;
const CLASS_STX: u8 = 0x03;
const CLASS_ALU: u8 = 0x04;
const CLASS_ALU64: u8 = 0x07;
const MODE_MEM: u8 = 0x60;
const MODE_MEMSX: u8 = 0x80;
const MODE_ATOMIC: u8 = 0xc0;
/// `mov64 dst, src` (`off` 0: `movsx` has a size there).
const MOV64_X: u8 = 0xbf;

use super::elf::{Insn, BPF_CALL as CALL, BPF_LD_IMM64 as LD_IMM64};
use crate::report::inspection::UncheckedLookup as Unchecked;

/// What a register is known to hold, of the map named.
#[derive(Clone)]
enum Held {
    /// The map itself, as an `ld_imm64` loads it for a helper.
    Map(String),
    /// A lookup's result in it: a value, or NULL.
    Lookup(String),
}

/// The first unchecked dereference of a lookup (the map is the symbol its
/// first argument was loaded from; the instruction is counted from the
/// program's start) on the straight path from
/// `start` to `end` (byte offsets of `code`); `symbol_at(offset)` names
/// the symbol an `ld_imm64` at that offset is relocated against, and
/// `helper_call(offset)` says whether a `call` there is a helper's.
pub(super) fn first_unchecked(
    code: &[u8],
    (start, end): (u64, u64),
    little: bool,
    symbol_at: impl Fn(u64) -> Option<String>,
    helper_call: impl Fn(u64) -> bool,
) -> Option<Unchecked> {
    let mut regs: [Option<Held>; 11] = Default::default();
    let dereferenced = |held: &Option<Held>, at: u64| match held {
        Some(Held::Lookup(map)) => Some(Unchecked {
            map: map.clone(),
            insn: at,
        }),
        _ => None,
    };
    let mut off = start;
    while off + 8 <= end.min(code.len() as u64) {
        let i = Insn::decode(&code[off as usize..off as usize + 8], little);
        let at = (off - start) / 8;
        if i.dst > 10 || i.src > 10 {
            return None;
        }
        let class = i.code & 0x07;
        let mode = i.code & 0xe0;
        match class {
            CLASS_LDX if mode == MODE_MEM || mode == MODE_MEMSX => {
                if let Some(found) = dereferenced(&regs[i.src], at) {
                    return Some(found);
                }
                regs[i.dst] = None;
            }
            CLASS_ST | CLASS_STX if mode == MODE_MEM || mode == MODE_ATOMIC => {
                if let Some(found) = dereferenced(&regs[i.dst], at) {
                    return Some(found);
                }
                if mode == MODE_ATOMIC {
                    return None; // may write its source or R0: not followed
                }
            }
            CLASS_LD if i.code == LD_IMM64 => {
                regs[i.dst] = symbol_at(off).map(Held::Map);
                off += 16;
                continue;
            }
            CLASS_ALU64 if i.code == MOV64_X && i.off == 0 => regs[i.dst] = regs[i.src].clone(),
            CLASS_ALU | CLASS_ALU64 => regs[i.dst] = None,
            _ if i.code == CALL && i.src == 0 && helper_call(off) => {
                let map = match &regs[1] {
                    Some(Held::Map(map)) => Some(map.clone()),
                    _ => None,
                };
                regs[..=5].fill(None);
                if i.imm == MAP_LOOKUP_ELEM {
                    regs[0] = map.map(Held::Lookup);
                }
            }
            // A branch, an exit, a call of a subprogram or a kfunc, a
            // legacy packet load: the path is no longer certain.
            _ => return None,
        }
        off += 8;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Vec<u8> {
        let mut b = vec![code, dst | (src << 4)];
        b.extend(off.to_le_bytes());
        b.extend(imm.to_le_bytes());
        b
    }

    /// `r1 = map; r2 = r10; r2 += -4; call 1; ...rest`, with the map's
    /// `ld_imm64` at offset 0.
    fn after_lookup(rest: &[Vec<u8>]) -> Vec<u8> {
        let mut code = insn(LD_IMM64, 1, 1, 0, 0);
        code.extend(insn(0, 0, 0, 0, 0));
        code.extend(insn(MOV64_X, 2, 10, 0, 0));
        code.extend(insn(0x07, 2, 0, 0, -4));
        code.extend(insn(CALL, 0, 0, 0, 1));
        for i in rest {
            code.extend(i);
        }
        code
    }

    fn judge(code: &[u8]) -> Option<Unchecked> {
        let map = |off: u64| (off == 0).then(|| "counters".to_owned());
        first_unchecked(code, (0, code.len() as u64), true, map, |_| true)
    }

    #[test]
    fn a_dereference_before_any_check_is_found_through_copies() {
        let direct = after_lookup(&[insn(0x79, 0, 0, 0, 0), insn(0x95, 0, 0, 0, 0)]);
        let found = judge(&direct).unwrap();
        assert_eq!((found.map.as_str(), found.insn), ("counters", 5));
        // Through a copy, and a store into the value.
        let copied = after_lookup(&[insn(MOV64_X, 6, 0, 0, 0), insn(0x7a, 6, 0, 8, 1)]);
        assert_eq!(judge(&copied).unwrap().insn, 6);
    }

    #[test]
    fn a_check_a_branch_or_an_overwrite_ends_the_certain_path() {
        let checked = after_lookup(&[insn(0x15, 0, 0, 1, 0), insn(0x79, 0, 0, 0, 0)]);
        assert_eq!(judge(&checked), None);
        let overwritten = after_lookup(&[insn(0xb7, 0, 0, 0, 0), insn(0x79, 1, 0, 0, 0)]);
        assert_eq!(judge(&overwritten), None);
        // Another helper call clobbers R0; a lookup of an unknown map is
        // not judged (the caller cannot say it may be NULL).
        let called = after_lookup(&[insn(CALL, 0, 0, 0, 5), insn(0x79, 0, 0, 0, 0)]);
        assert_eq!(judge(&called), None);
        let code = after_lookup(&[insn(0x79, 0, 0, 0, 0)]);
        let unknown = first_unchecked(&code, (0, code.len() as u64), true, |_| None, |_| true);
        assert_eq!(unknown, None);
        // A branch before the lookup: it may be dead code to the verifier.
        let mut late = insn(0x15, 1, 0, 5, 0);
        late.extend(after_lookup(&[insn(0x79, 0, 0, 0, 0)]));
        let map = |off: u64| (off == 8).then(|| "counters".to_owned());
        assert_eq!(
            first_unchecked(&late, (0, late.len() as u64), true, map, |_| true),
            None
        );
    }
}
