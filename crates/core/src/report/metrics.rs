//! A run's metric history for other tools: one row per optimizer step.

use super::format::Format;
use crate::schema::StepLog;
use anyhow::{bail, Result};

pub fn render_steps(steps: &[StepLog], format: Format) -> Result<String> {
    match format {
        Format::Csv => {
            let mut out = String::from(
                "step,epoch,loss,grad_norm,learning_rate,samples_per_second,elapsed_seconds\r\n",
            );
            for s in steps {
                out += &format!(
                    "{},{},{},{},{},{},{}\r\n",
                    s.step,
                    s.epoch,
                    s.loss,
                    s.grad_norm,
                    s.learning_rate,
                    s.samples_per_second,
                    s.elapsed_seconds
                );
            }
            Ok(out)
        }
        Format::Json => {
            let mut out = String::new();
            for s in steps {
                out += &serde_json::to_string(s)?;
                out.push('\n');
            }
            Ok(out)
        }
        other => bail!("metrics export writes csv or jsonl, not {other:?}"),
    }
}
