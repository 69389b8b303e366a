//! A run's metrics as a TensorBoard event file, which TensorBoard, `wandb
//! sync`, Aim's converter and the Hugging Face Hub's Metrics tab all read.
//!
//! The file is a TFRecord stream of `Event` protocol buffers, written here by
//! hand: each record is its length (u64, little-endian), the length's masked
//! CRC-32C, the bytes, and their masked CRC-32C. The first event names the
//! format (`brain.Event:2`); each later one holds a step's scalars as
//! `Summary.Value { tag, simple_value }`.
//!
//! Tags follow Hugging Face's `TensorBoardCallback`: `train/loss`,
//! `train/grad_norm`, `train/learning_rate`, `train/epoch`, plus
//! `train/samples_per_second`; evaluations during training are `eval/f1`
//! and `eval/exact_match`, the final evaluation `final/f1` and
//! `final/exact_match` (it may score more questions than those during training).
//! What the run cost is under `system/`: `system/cpu_percent`,
//! `system/rss_gib` and per GPU `system/gpuN/utilization_percent`,
//! `memory_used_mib`, `power_watts` and `temperature_c`, at the step logged
//! when each was sampled.

use crate::schema::{EvalKind, EvalSummary, StepLog, SystemSample};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// One scalar as TensorBoard stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    pub tag: String,
    pub step: i64,
    pub wall_time: f64,
    pub value: f32,
}

/// The scalars of a run's history. Wall times are the run's start plus its
/// training seconds at that step (pauses and evaluations left out).
pub fn run_scalars(steps: &[StepLog], evals: &[EvalSummary], start_wall: f64) -> Vec<Scalar> {
    let mut out = Vec::new();
    let wall_at = |step: u64| {
        let i = steps.partition_point(|s| s.step < step);
        let s = steps.get(i).or(steps.last());
        start_wall + s.map_or(0.0, |s| s.elapsed_seconds)
    };
    for s in steps {
        for (tag, value) in [
            ("train/loss", s.loss),
            ("train/grad_norm", s.grad_norm),
            ("train/learning_rate", s.learning_rate),
            ("train/epoch", s.epoch),
            ("train/samples_per_second", s.samples_per_second),
        ] {
            out.push(Scalar {
                tag: tag.into(),
                step: s.step as i64,
                wall_time: start_wall + s.elapsed_seconds,
                value: value as f32,
            });
        }
    }
    for e in evals {
        let prefix = match e.kind {
            EvalKind::InTraining => "eval",
            EvalKind::Final => "final",
        };
        for (name, value) in [("exact_match", e.exact_match), ("f1", e.f1)] {
            out.push(Scalar {
                tag: format!("{prefix}/{name}"),
                step: e.step as i64,
                wall_time: wall_at(e.step),
                value: value as f32,
            });
        }
    }
    out
}

/// The system samples as scalars; wall times are the run's start plus the
/// seconds its process had run when sampled.
pub fn system_scalars(samples: &[SystemSample], start_wall: f64) -> Vec<Scalar> {
    let mut out = Vec::new();
    for s in samples {
        let mut values = vec![
            ("system/cpu_percent".to_string(), s.cpu_percent),
            (
                "system/rss_gib".to_string(),
                s.rss_bytes.map(|b| b as f64 / (1u64 << 30) as f64),
            ),
        ];
        for g in &s.gpus {
            let tag = |name: &str| format!("system/gpu{}/{name}", g.index);
            values.extend([
                (tag("utilization_percent"), g.utilization_percent),
                (tag("memory_used_mib"), g.memory_used_mib),
                (tag("power_watts"), g.power_watts),
                (tag("temperature_c"), g.temperature_c),
            ]);
        }
        for (tag, value) in values {
            if let Some(value) = value {
                out.push(Scalar {
                    tag,
                    step: s.step as i64,
                    wall_time: start_wall + s.elapsed_seconds,
                    value: value as f32,
                });
            }
        }
    }
    out
}

/// The event file's bytes: the version event, then one event per scalar, in order.
pub fn event_file(scalars: &[Scalar], start_wall: f64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut version = Vec::new();
    put_double(&mut version, 1, start_wall);
    put_bytes(&mut version, 3, b"brain.Event:2");
    put_record(&mut out, &version);
    for s in scalars {
        let mut value = Vec::new();
        put_bytes(&mut value, 1, s.tag.as_bytes());
        put_key(&mut value, 2, 5);
        value.extend_from_slice(&s.value.to_le_bytes());
        let mut summary = Vec::new();
        put_bytes(&mut summary, 1, &value);
        let mut event = Vec::new();
        put_double(&mut event, 1, s.wall_time);
        put_key(&mut event, 2, 0);
        put_varint(&mut event, s.step as u64);
        put_bytes(&mut event, 5, &summary);
        put_record(&mut out, &event);
    }
    out
}

/// The file name TensorBoard looks for (`*tfevents*`), stamped with the start.
pub fn event_file_name(start_wall: f64, run_id: &str) -> String {
    format!(
        "events.out.tfevents.{}.squadlab-{run_id}",
        start_wall as i64
    )
}

/// Exports the run in `run_dir` into `out_dir`: the event file's path, its
/// scalar count, and the lines of `metrics.jsonl` that could not be read.
pub fn export_run_dir(run_dir: &Path, out_dir: &Path) -> Result<(PathBuf, usize, Vec<String>)> {
    let record = crate::store::RunRecord::load(run_dir)?;
    let log = crate::store::read_metrics(run_dir);
    // Wall times count from the run's start (its creation when it never started).
    let start = [record.started.as_deref(), Some(record.created.as_str())]
        .into_iter()
        .flatten()
        .find_map(crate::store::parse_rfc3339)
        .unwrap_or(0);
    let (path, scalars) = export_run(
        out_dir,
        &record.id,
        &log.steps(),
        &log.evaluations(),
        &log.system_samples(),
        start as f64,
    )?;
    Ok((path, scalars, log.problems))
}

/// Writes a run's event file into `out_dir` (a TensorBoard log folder of its
/// own), replacing one an earlier export of the same run left there.
pub fn export_run(
    out_dir: &Path,
    run_id: &str,
    steps: &[StepLog],
    evals: &[EvalSummary],
    system: &[SystemSample],
    start_wall: f64,
) -> Result<(PathBuf, usize)> {
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let mut scalars = run_scalars(steps, evals, start_wall);
    scalars.extend(system_scalars(system, start_wall));
    let path = out_dir.join(event_file_name(start_wall, run_id));
    crate::fsutil::write_atomically(&path, &event_file(&scalars, start_wall))?;
    let mine = format!(".squadlab-{run_id}");
    for entry in std::fs::read_dir(out_dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("events.out.tfevents.") && name.ends_with(&mine) && entry.path() != path
        {
            std::fs::remove_file(entry.path()).ok();
        }
    }
    Ok((path, scalars.len()))
}

/// Reads an event file back, checking every CRC: the scalars it holds.
pub fn read_event_file(bytes: &[u8]) -> Result<Vec<Scalar>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    let mut record = 0usize;
    while at < bytes.len() {
        let Some(header) = bytes.get(at..at + 12) else {
            bail!("record {record} at byte {at}: truncated header");
        };
        let len = u64::from_le_bytes(header[..8].try_into().expect("8 bytes")) as usize;
        if masked_crc(&header[..8]) != u32::from_le_bytes(header[8..12].try_into().expect("4")) {
            bail!("record {record} at byte {at}: bad length CRC");
        }
        let Some(data) = bytes.get(at + 12..at + 12 + len) else {
            bail!("record {record} at byte {at}: truncated data");
        };
        let Some(crc) = bytes.get(at + 12 + len..at + 16 + len) else {
            bail!("record {record} at byte {at}: truncated data CRC");
        };
        if masked_crc(data) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
            bail!("record {record} at byte {at}: bad data CRC");
        }
        read_event(data, &mut out).map_err(|e| anyhow::anyhow!("record {record}: {e}"))?;
        at += 16 + len;
        record += 1;
    }
    Ok(out)
}

/// Decodes one `Event`, appending its scalars.
fn read_event(data: &[u8], out: &mut Vec<Scalar>) -> Result<()> {
    let (mut wall_time, mut step, mut values) = (0.0, 0i64, Vec::new());
    for (field, value) in fields(data)? {
        match (field, value) {
            (1, Field::Fixed64(v)) => wall_time = f64::from_bits(v),
            (2, Field::Varint(v)) => step = v as i64,
            (5, Field::Bytes(summary)) => {
                for (f, v) in fields(summary)? {
                    if let (1, Field::Bytes(value)) = (f, v) {
                        let (mut tag, mut simple) = (String::new(), None);
                        for (f, v) in fields(value)? {
                            match (f, v) {
                                (1, Field::Bytes(t)) => tag = String::from_utf8(t.to_vec())?,
                                (2, Field::Fixed32(x)) => simple = Some(f32::from_bits(x)),
                                _ => {}
                            }
                        }
                        if let Some(value) = simple {
                            values.push((tag, value));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out.extend(values.into_iter().map(|(tag, value)| Scalar {
        tag,
        step,
        wall_time,
        value,
    }));
    Ok(())
}

enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

/// A protocol buffer message's fields, in order.
fn fields(mut data: &[u8]) -> Result<Vec<(u64, Field<'_>)>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let key = take_varint(&mut data)?;
        let field = match key & 7 {
            0 => Field::Varint(take_varint(&mut data)?),
            1 => Field::Fixed64(u64::from_le_bytes(take(&mut data, 8)?.try_into()?)),
            5 => Field::Fixed32(u32::from_le_bytes(take(&mut data, 4)?.try_into()?)),
            2 => {
                let len = take_varint(&mut data)? as usize;
                Field::Bytes(take(&mut data, len)?)
            }
            wire => bail!("field {}: unsupported wire type {wire}", key >> 3),
        };
        out.push((key >> 3, field));
    }
    Ok(out)
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    if data.len() < n {
        bail!("message cut short");
    }
    let (head, rest) = data.split_at(n);
    *data = rest;
    Ok(head)
}

fn take_varint(data: &mut &[u8]) -> Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = take(data, 1)?[0];
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    bail!("varint too long")
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, field: u64, wire: u64) {
    put_varint(out, field << 3 | wire);
}

fn put_double(out: &mut Vec<u8>, field: u64, v: f64) {
    put_key(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_key(out, field, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_record(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
}

/// TFRecord's masked CRC-32C (Castagnoli).
fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_samples_export_under_system_and_read_back() {
        use crate::schema::GpuUsage;
        let samples = [
            SystemSample {
                elapsed_seconds: 5.0,
                step: 0,
                cpu_percent: Some(180.5),
                rss_bytes: Some(3 << 29),
                gpus: Vec::new(),
                gpu_error: Some("nvidia-smi: not found".into()),
            },
            SystemSample {
                elapsed_seconds: 10.0,
                step: 7,
                cpu_percent: None,
                rss_bytes: Some(1 << 30),
                gpus: vec![GpuUsage {
                    index: 1,
                    utilization_percent: Some(97.0),
                    memory_used_mib: Some(40_000.0),
                    power_watts: None,
                    temperature_c: Some(61.0),
                }],
                gpu_error: None,
            },
        ];
        let scalars = system_scalars(&samples, 100.0);
        let tags: Vec<(&str, i64, f32)> = scalars
            .iter()
            .map(|s| (s.tag.as_str(), s.step, s.value))
            .collect();
        assert_eq!(
            tags,
            [
                ("system/cpu_percent", 0, 180.5),
                ("system/rss_gib", 0, 1.5),
                ("system/rss_gib", 7, 1.0),
                ("system/gpu1/utilization_percent", 7, 97.0),
                ("system/gpu1/memory_used_mib", 7, 40_000.0),
                ("system/gpu1/temperature_c", 7, 61.0),
            ]
        );
        assert_eq!(scalars[2].wall_time, 110.0);
        let bytes = event_file(&scalars, 100.0);
        assert_eq!(read_event_file(&bytes).unwrap(), scalars);
    }

    #[test]
    fn crc32c_matches_its_check_value() {
        // The standard check: CRC-32C of "123456789".
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn a_damaged_file_is_refused_at_its_record() {
        let scalars = vec![Scalar {
            tag: "train/loss".into(),
            step: 3,
            wall_time: 10.5,
            value: 1.25,
        }];
        let mut bytes = event_file(&scalars, 10.0);
        assert_eq!(read_event_file(&bytes).unwrap(), scalars);
        let last = bytes.len() - 6;
        bytes[last] ^= 1;
        let err = read_event_file(&bytes).unwrap_err().to_string();
        assert!(err.starts_with("record 1 at byte"), "{err}");
        assert!(read_event_file(&bytes[..bytes.len() - 2]).is_err());
    }
}
