//! Running a check across a matrix: what runs in every guest (`check`),
//! which kernel modules it needs (`modules`), the run itself (`engine`), and
//! what one boot means (`verdict`).

pub mod check;
pub mod engine;
pub mod modules;
pub mod notes;
pub mod verdict;
