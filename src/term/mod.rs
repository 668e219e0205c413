//! What the terminal shows: live progress lines and aligned tables.

pub mod progress;
pub mod table;
