//! Aligned plain-text tables for stdout, where people read results in a
//! terminal or a CI log; every command that prints rows shares this layout.

use crate::escape;

/// Left-aligns each column to its widest cell, two spaces apart. Cells are
/// names and verdicts from reports: each is made one inert line first.
pub fn render<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let header = header.map(str::to_owned);
    let rows: Vec<[String; N]> = rows
        .iter()
        .map(|r| r.each_ref().map(|c| escape::plain_line(c)))
        .collect();
    let widths: Vec<usize> = (0..N)
        .map(|i| {
            std::iter::once(&header)
                .chain(&rows)
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    std::iter::once(&header)
        .chain(&rows)
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

    #[test]
    fn cells_stay_on_their_row() {
        let t = super::render(["A", "B"], &[["::x::\n\u{1b}[2J".into(), "y\rz".into()]]);
        assert_eq!(t, "A            B\n:\u{200b}:x:: �[2J  y z\n");
    }
}
