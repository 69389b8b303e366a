//! What runs are read as: comparison tables against the published results,
//! question-level diffs, and metric histories, in formats for papers and tools.

mod breakdown;
mod breakdown_table;
mod diff;
mod distributions;
mod format;
mod metrics;
mod reference;
mod run_data;
pub mod significance;
mod table;
pub mod tensorboard;

pub use breakdown::{
    breakdown_runs, question_type, Breakdown, BucketComparison, BucketRow, Dimension, RunBreakdown,
};
pub use breakdown_table::{render_breakdown, run_label};
pub use diff::{diff_runs, Flip, QuestionDiff};
pub use format::{aligned, render, tex_escape, text, Format};
pub use metrics::render_steps;
pub use reference::{model_size, Reference, ReferenceResults, Role, SQUAD_V1, SQUAD_V2};
pub use run_data::eval_dataset;
pub use table::{comparison_rows, differing_keys, Row, RowKind, Stat, TableOptions};
