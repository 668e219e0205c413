//! Aligned plain-text tables for stdout, where people read results in a
//! terminal or a CI log; every command that prints rows shares this layout.

/// Left-aligns each column to its widest cell, two spaces apart.
pub fn render<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let header = header.map(str::to_owned);
    let widths: Vec<usize> = (0..N)
        .map(|i| {
            std::iter::once(&header)
                .chain(rows)
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    std::iter::once(&header)
        .chain(rows)
        .map(|r| {
            let cells: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:w$}"))
                .collect();
            cells.join("  ").trim_end().to_owned() + "\n"
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn aligns_columns_by_characters() {
        let t = super::render(
            ["A", "BB"],
            &[["ü".into(), "x".into()], ["long".into(), "".into()]],
        );
        assert_eq!(t, "A     BB\nü     x\nlong\n");
    }
}
