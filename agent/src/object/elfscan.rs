//! Which programs of an object reference a symbol (an extern kfunc or
//! ksym), read from the ELF relocations. libbpf resolves externs for the
//! whole object before loading any program, so its error names the extern,
//! not the program the user has to change.

use std::collections::BTreeSet;

use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget, SymbolKind};

/// Names of the functions (programs or subprograms) whose code has a
/// relocation against symbol `name`.
pub fn users_of_symbol(elf: &[u8], name: &str) -> BTreeSet<String> {
    let mut users = BTreeSet::new();
    let Ok(file) = object::File::parse(elf) else {
        return users;
    };
    let funcs: Vec<_> = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0)
        .filter_map(|s| {
            Some((
                s.section_index()?,
                s.address(),
                s.address() + s.size(),
                s.name().ok()?.to_owned(),
            ))
        })
        .collect();
    for section in file.sections() {
        for (offset, reloc) in section.relocations() {
            let RelocationTarget::Symbol(idx) = reloc.target() else {
                continue;
            };
            let Ok(sym) = file.symbol_by_index(idx) else {
                continue;
            };
            if sym.name() != Ok(name) {
                continue;
            }
            for (sec, start, end, func) in &funcs {
                if *sec == section.index() && (*start..*end).contains(&offset) {
                    users.insert(func.clone());
                }
            }
        }
    }
    users
}
