//! What a run costs, sampled off the training thread: the process's CPU and
//! resident memory, and on CUDA every GPU's utilisation, memory, power and
//! temperature (nvidia-smi). Samples join the run's event stream as
//! `System` events through the [`EventSender`] the trainer also sends on,
//! which keeps them before the run's last event.

use crate::memory::gpus::query_gpu_usage;
use crate::schema::events::{SystemSample, TrainEvent};
use crossbeam_channel::{RecvTimeoutError, Sender};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the process is sampled; `SQUADLAB_SYSTEM_SAMPLE_MS` overrides it
/// (tests sample fast).
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// The trainer's side of the event channel, shared with the sampler: once the
/// run's terminal event is sent, nothing else is.
#[derive(Clone)]
pub struct EventSender {
    tx: Sender<TrainEvent>,
    open: Arc<Mutex<bool>>,
    /// The last step sent, for the samples' x axis.
    step: Arc<AtomicU64>,
}

impl EventSender {
    pub fn new(tx: Sender<TrainEvent>) -> Self {
        Self {
            tx,
            open: Arc::new(Mutex::new(true)),
            step: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Sends in order; a terminal event closes the stream to samples. False
    /// when the listener is gone (a run goes on without one).
    pub fn send(&self, event: TrainEvent) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if event.is_terminal() {
            *open = false;
        }
        if let TrainEvent::Step(s) = &event {
            self.step.store(s.step, Ordering::Relaxed);
        }
        self.tx.send(event).is_ok()
    }

    /// Sends a sample unless the run has ended; false once it has (or the
    /// listener is gone).
    fn send_sample(&self, sample: SystemSample) -> bool {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        *open && self.tx.send(TrainEvent::System(sample)).is_ok()
    }
}

/// The sampling thread; stops when dropped.
pub struct Sampler {
    /// Dropped to stop the thread.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Samples this process every [`SAMPLE_EVERY`] (or
    /// `SQUADLAB_SYSTEM_SAMPLE_MS`) into `events`, and the GPUs too when `gpus`.
    pub fn start(events: EventSender, gpus: bool) -> std::io::Result<Sampler> {
        let every = std::env::var("SQUADLAB_SYSTEM_SAMPLE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(SAMPLE_EVERY, Duration::from_millis);
        Self::start_every(events, gpus, every)
    }

    pub fn start_every(
        events: EventSender,
        gpus: bool,
        every: Duration,
    ) -> std::io::Result<Sampler> {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("squadlab-system".into())
            .spawn(move || {
                let began = Instant::now();
                let mut cpu = CpuClock::now();
                let mut gpu_error_said = false;
                // The first sample a whole interval in, so its CPU share means
                // something; the stop sender dropped ends the loop.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let mut sample = sample_process(&mut cpu, began, &events);
                    if gpus {
                        match query_gpu_usage() {
                            Ok(list) => sample.gpus = list,
                            Err(e) if !gpu_error_said => {
                                gpu_error_said = true;
                                sample.gpu_error = Some(e);
                            }
                            Err(_) => {}
                        }
                    }
                    if !events.send_sample(sample) {
                        break;
                    }
                }
            })?;
        Ok(Sampler {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The process's CPU time (user + system, in clock ticks) when last read.
struct CpuClock {
    ticks: Option<u64>,
    at: Instant,
}

impl CpuClock {
    fn now() -> Self {
        Self {
            ticks: process_cpu_ticks(),
            at: Instant::now(),
        }
    }
}

fn sample_process(cpu: &mut CpuClock, began: Instant, events: &EventSender) -> SystemSample {
    let now = CpuClock::now();
    let wall = now.at.duration_since(cpu.at).as_secs_f64();
    let cpu_percent = match (cpu.ticks, now.ticks) {
        (Some(a), Some(b)) if wall > 0.0 => {
            Some(100.0 * b.saturating_sub(a) as f64 / ticks_per_second() / wall)
        }
        _ => None,
    };
    *cpu = now;
    SystemSample {
        elapsed_seconds: began.elapsed().as_secs_f64(),
        step: events.step.load(Ordering::Relaxed),
        cpu_percent,
        rss_bytes: process_rss_bytes(),
        gpus: Vec::new(),
        gpu_error: None,
    }
}

/// utime + stime of /proc/self/stat (fields 14 and 15, counted after the
/// command name, which may hold spaces).
fn process_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a constant of the system and has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

fn process_rss_bytes() -> Option<u64> {
    rss_bytes("/proc/self/status")
}

/// VmRSS of a `/proc/PID/status` file, in bytes.
pub fn rss_bytes(status_file: &str) -> Option<u64> {
    let status = std::fs::read_to_string(status_file).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_stop_at_the_terminal_event_and_measure_this_process() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let events = EventSender::new(tx);
        let sampler =
            Sampler::start_every(events.clone(), false, Duration::from_millis(20)).unwrap();
        // Busy for a while: the samples see CPU time.
        let until = Instant::now() + Duration::from_millis(200);
        let mut x = 0u64;
        while Instant::now() < until {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        assert!(events.send(TrainEvent::Failed {
            error: "done".into(),
        }));
        std::thread::sleep(Duration::from_millis(100));
        drop(sampler);
        let all: Vec<TrainEvent> = rx.try_iter().collect();
        let last = all.last().unwrap();
        assert!(
            last.is_terminal(),
            "nothing after the terminal event: {last:?}"
        );
        let samples: Vec<&SystemSample> = all
            .iter()
            .filter_map(|e| match e {
                TrainEvent::System(s) => Some(s),
                _ => None,
            })
            .collect();
        assert!(samples.len() >= 3, "{} samples", samples.len());
        assert!(samples
            .iter()
            .all(|s| s.rss_bytes.is_some_and(|b| b > 1 << 20)));
        let busiest = samples
            .iter()
            .filter_map(|s| s.cpu_percent)
            .fold(0.0, f64::max);
        assert!(busiest > 20.0, "CPU {busiest}%");
        assert!(samples
            .windows(2)
            .all(|w| w[0].elapsed_seconds < w[1].elapsed_seconds));
    }
}
