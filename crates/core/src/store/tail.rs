//! The end of a run's event log, for listings: the last step logged, found by
//! reading back from the end of `metrics.jsonl`. Listing a store of long runs
//! then reads a few kilobytes per run, not every log whole.

use crate::schema::events::EVENTS_FILE;
use crate::schema::{StepLog, TrainEvent};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// What the end of a log says.
#[derive(Clone, Debug, Default)]
pub struct LogTail {
    /// The last step line of the file. A resumed run that is still redoing
    /// steps it logged before its checkpoint shows where it is now, not the
    /// furthest step it ever logged.
    pub last_step: Option<StepLog>,
    /// Unreadable lines after that step (in file order), in
    /// [`super::read_metrics`]'s words; lines before it are not read.
    pub problems: Vec<String>,
}

/// Bytes read per seek back.
const BLOCK: u64 = 64 << 10;
/// No event squadlab writes comes near this (a step is ~200 bytes, a start
/// with its config a few kB): longer lines are passed over without being held.
const MAX_LINE: usize = 1 << 20;

/// Reads `metrics.jsonl` back from its end up to the last step line.
pub fn read_tail(dir: &Path) -> LogTail {
    let path = dir.join(EVENTS_FILE);
    let mut tail = LogTail::default();
    let result = File::open(&path).and_then(|mut f| scan_back(&mut f, &mut tail));
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tail
            .problems
            .push(format!("cannot read {}: {e}", path.display())),
    }
    tail.problems.reverse();
    tail
}

/// Splits the file into lines from the end, block by block, and judges each
/// until a step is found. Problems are pushed last line first.
fn scan_back(file: &mut File, tail: &mut LogTail) -> std::io::Result<()> {
    let len = file.metadata()?.len();
    let mut pos = len;
    // The end of the line being assembled, and its bytes read so far.
    let mut line_end = len;
    let mut carry: Vec<u8> = Vec::new();
    let mut too_long = false;
    let mut block = Vec::new();
    while pos > 0 {
        let start = pos.saturating_sub(BLOCK);
        block.resize((pos - start) as usize, 0);
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut block)?;
        let mut cut = block.len();
        while let Some(nl) = block[..cut].iter().rposition(|&b| b == b'\n') {
            let line_start = start + nl as u64 + 1;
            let mut line = block[nl + 1..cut].to_vec();
            line.extend_from_slice(&carry);
            let found = judge(file, tail, &line, too_long, (line_start, line_end), len)?;
            if found {
                return Ok(());
            }
            (carry, too_long, line_end, cut) = (Vec::new(), false, line_start - 1, nl);
        }
        too_long |= carry.len() + cut > MAX_LINE;
        if too_long {
            carry.clear();
        } else {
            carry.splice(0..0, block[..cut].iter().copied());
        }
        pos = start;
    }
    judge(file, tail, &carry, too_long, (0, line_end), len)?;
    Ok(())
}

/// Judges one line at `span` of the file; true when it is a step.
fn judge(
    file: &mut File,
    tail: &mut LogTail,
    line: &[u8],
    too_long: bool,
    span: (u64, u64),
    len: u64,
) -> std::io::Result<bool> {
    // Only the file's last line can lack its newline.
    let cut_short = span.1 == len;
    let text = String::from_utf8_lossy(line);
    if !too_long && text.trim().is_empty() {
        return Ok(false);
    }
    let parsed = (!too_long).then(|| serde_json::from_str::<TrainEvent>(&text));
    let problem = match parsed {
        Some(Ok(TrainEvent::Step(s))) => {
            tail.last_step = Some(s);
            return Ok(true);
        }
        Some(Ok(_)) => return Ok(false),
        _ if cut_short => "last line cut short (a crash mid-write); ignored".to_string(),
        Some(Err(e)) => format!("unreadable line ignored: {e}"),
        // A whole line this long is garbage; the full read reports it.
        None => return Ok(false),
    };
    let number = line_number(file, span.0)?;
    tail.problems
        .push(format!("{EVENTS_FILE}:{number}: {problem}"));
    Ok(false)
}

/// The 1-based number of the line starting at `offset`: counts newlines
/// before it, which only a damaged log needs.
fn line_number(file: &mut File, offset: u64) -> std::io::Result<usize> {
    file.seek(SeekFrom::Start(0))?;
    let mut newlines = 0;
    let mut buf = vec![0u8; 1 << 16];
    let mut left = offset;
    while left > 0 {
        let n = file.read(&mut buf[..left.min(1 << 16) as usize])?;
        if n == 0 {
            break;
        }
        newlines += buf[..n].iter().filter(|&&b| b == b'\n').count();
        left -= n as u64;
    }
    Ok(newlines + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::metrics_log::read_metrics;

    fn step(step: u64) -> String {
        let e = TrainEvent::Step(StepLog {
            step,
            epoch: 0.0,
            loss: step as f64,
            grad_norm: 1.0,
            learning_rate: 1e-5,
            samples_per_second: 1.0,
            elapsed_seconds: 1.0,
        });
        serde_json::to_string(&e).unwrap()
    }

    fn tail_of(text: &[u8]) -> (LogTail, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(EVENTS_FILE), text).unwrap();
        (read_tail(dir.path()), dir)
    }

    /// The tail's problems are the full read's last ones, in the same words.
    fn agrees_with_full_read(tail: &LogTail, dir: &Path) {
        let full = read_metrics(dir);
        let from = full.problems.len() - tail.problems.len();
        assert_eq!(tail.problems, full.problems[from..]);
    }

    #[test]
    fn finds_the_last_step_across_blocks() {
        // ~1 MB: many blocks, lines straddling their edges.
        let mut text: String = (1..=8000).map(|s| step(s) + "\n").collect();
        // Other events after the last step, over several blocks.
        for _ in 0..5000 {
            text += "{\"event\":\"paused\",\"step\":8000}\n";
        }
        let (tail, dir) = tail_of(text.as_bytes());
        assert_eq!(tail.last_step.as_ref().unwrap().step, 8000);
        assert!(tail.problems.is_empty(), "{:?}", tail.problems);
        assert_eq!(tail.last_step, read_metrics(dir.path()).steps().pop());
        // Without a final newline, a whole last line still counts.
        let (tail, _) = tail_of(step(3).as_bytes());
        assert_eq!(tail.last_step.as_ref().unwrap().step, 3);
    }

    #[test]
    fn a_newer_versions_event_is_skipped_quietly_and_a_broken_known_one_is_not() {
        let text = format!(
            "{}\n{{\"event\":\"gpu_sample\",\"utilization\":97.0}}\n{}\n",
            step(1),
            step(2)
        );
        let (tail, dir) = tail_of(text.as_bytes());
        assert_eq!(tail.last_step.as_ref().unwrap().step, 2);
        assert!(tail.problems.is_empty(), "{:?}", tail.problems);
        let log = read_metrics(dir.path());
        assert!(log.problems.is_empty(), "{:?}", log.problems);
        assert_eq!(log.events.len(), 2, "the unknown event is not kept");
        agrees_with_full_read(&tail, dir.path());
        // A known event whose fields do not read is still a problem.
        let text = format!("{}\n{{\"event\":\"step\",\"step\":\"two\"}}\n", step(1));
        let (tail, _) = tail_of(text.as_bytes());
        assert_eq!(tail.last_step.as_ref().unwrap().step, 1);
        assert_eq!(tail.problems.len(), 1, "{:?}", tail.problems);
        assert!(tail.problems[0].starts_with("metrics.jsonl:2: unreadable line ignored: "));
    }

    #[test]
    fn a_cut_short_last_line_is_skipped_and_reported() {
        let full = step(3);
        let text = format!("{}\n{}\n{}", step(1), step(2), &full[..full.len() / 2]);
        let (tail, dir) = tail_of(text.as_bytes());
        assert_eq!(tail.last_step.as_ref().unwrap().step, 2);
        assert_eq!(
            tail.problems,
            ["metrics.jsonl:3: last line cut short (a crash mid-write); ignored"]
        );
        agrees_with_full_read(&tail, dir.path());
        // A garbage line between the last step and the end is reported too.
        let text = format!("{}\n\nnot json\n", step(1));
        let (tail, dir) = tail_of(text.as_bytes());
        assert_eq!(tail.last_step.as_ref().unwrap().step, 1);
        assert!(tail.problems[0].starts_with("metrics.jsonl:3: unreadable line ignored: "));
        agrees_with_full_read(&tail, dir.path());
    }

    #[test]
    fn empty_missing_and_stepless_logs_have_no_step() {
        let (tail, _) = tail_of(b"");
        assert!(tail.last_step.is_none() && tail.problems.is_empty());
        let (tail, _) = tail_of(b"\n\n  \n");
        assert!(tail.last_step.is_none() && tail.problems.is_empty());
        let missing = tempfile::tempdir().unwrap();
        let tail = read_tail(missing.path());
        assert!(tail.last_step.is_none() && tail.problems.is_empty());
        let text = "{\"event\":\"paused\",\"step\":0}\n{\"event\":\"resumed\",\"step\":0}\n";
        let (tail, dir) = tail_of(text.as_bytes());
        assert!(tail.last_step.is_none() && tail.problems.is_empty());
        agrees_with_full_read(&tail, dir.path());
    }

    #[test]
    fn a_huge_garbage_last_line_is_not_held() {
        let garbage = "x".repeat(3 * MAX_LINE);
        // Cut short: reported with its line number.
        let text = format!("{}\n{}\n{garbage}", step(1), step(2));
        let (tail, dir) = tail_of(text.as_bytes());
        assert_eq!(tail.last_step.as_ref().unwrap().step, 2);
        assert_eq!(
            tail.problems,
            ["metrics.jsonl:3: last line cut short (a crash mid-write); ignored"]
        );
        agrees_with_full_read(&tail, dir.path());
        // Whole: passed over, left for the full read to report.
        let text = format!("{}\n{garbage}\n", step(1));
        let (tail, _) = tail_of(text.as_bytes());
        assert_eq!(tail.last_step.as_ref().unwrap().step, 1);
        assert!(tail.problems.is_empty(), "{:?}", tail.problems);
    }
}
