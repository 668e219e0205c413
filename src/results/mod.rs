//! What runs are kept and compared with: the run history, the comparison of
//! two reports, and merging shard reports into one.

pub mod compare;
pub mod history;
pub mod merge;
