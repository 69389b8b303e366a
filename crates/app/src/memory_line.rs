//! The New-run form's memory line: the planner's prediction for the form's
//! config against its device ("needs about X; cuda:0 has Y free"), and the
//! refusal of a CUDA run that cannot fit. The GPUs come from `nvidia-smi`,
//! never a CUDA context in the app's process.
//!
//! Nothing here blocks a frame. Finding a model's config (a folder's
//! config.json, the hub cache, a `python3` start for a pip package) and
//! asking `nvidia-smi` run on background threads; each frame polls their
//! channels, and a thread asks for a repaint when its answer is in. A typed
//! model is looked for once its text settles: when the field is left, or
//! when its text has not changed for [`SETTLE`]; never per keystroke.

use crossbeam_channel::{Receiver, TryRecvError};
use squadlab_core::config::{self, ModelSource, RunConfig};
use squadlab_core::memory::gpus::{query_gpus, Gpu};
use squadlab_core::memory::{check, device_memory, model_config, Fit};
use squadlab_core::model::{BertConfig, CUDA_BUILT};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the model field's text must stay unchanged, while it is typed
/// in, before the model is looked for.
pub const SETTLE: Duration = Duration::from_millis(600);

/// Finds a model's config without a download: `memory::model_config` in the
/// app; tests give a slow or counting one. It runs off the UI thread.
pub type Locator = Arc<dyn Fn(&ModelSource) -> Option<BertConfig> + Send + Sync>;

type Gpus = Result<Vec<Gpu>, String>;

/// What the line needs, each asked once and in the background: the GPU
/// query is a process spawn, a model's config a file read or a python3
/// start, and the form redraws every frame.
pub struct MemoryProbe {
    gpus: Option<Answer<Gpus>>,
    models: HashMap<String, Answer<Option<BertConfig>>>,
    locate: Locator,
    /// The model text last seen, and when it changed to that.
    seen: Option<(String, Instant)>,
}

impl Default for MemoryProbe {
    fn default() -> Self {
        Self::with_locator(Arc::new(model_config))
    }
}

/// A background thread's answer: still asked, or in.
enum Answer<T> {
    Asked(Receiver<T>),
    Ready(T),
}

impl<T> Answer<T> {
    /// The answer once it is in; `lost` stands for one that never comes (its
    /// thread could not start, or ended without answering).
    fn poll(&mut self, lost: impl FnOnce() -> T) -> Option<&T> {
        if let Answer::Asked(rx) = self {
            match rx.try_recv() {
                Ok(answer) => *self = Answer::Ready(answer),
                Err(TryRecvError::Disconnected) => *self = Answer::Ready(lost()),
                Err(TryRecvError::Empty) => return None,
            }
        }
        match self {
            Answer::Ready(answer) => Some(answer),
            Answer::Asked(_) => None,
        }
    }
}

/// Runs `work` on a thread named `name`; its answer comes back over a
/// channel, with a repaint asked of `ctx` so that the frame that shows it
/// comes without input. A thread that cannot start drops the sender, which
/// the poll reads as a lost answer.
fn ask<T: Send + 'static>(
    name: &str,
    ctx: &egui::Context,
    work: impl FnOnce() -> T + Send + 'static,
) -> Answer<T> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let ctx = ctx.clone();
    let started = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            // The form may be gone by now; then nobody waits for the answer.
            let _ = tx.send(work());
            ctx.request_repaint();
        });
    drop(started);
    Answer::Asked(rx)
}

/// The memory line's state for the form's config.
pub enum Planned {
    Fit(Box<Fit>),
    /// The model's config is not at hand without a download.
    NotAtHand,
    /// Still being found out: what is awaited.
    Waiting(&'static str),
}

impl Planned {
    pub fn fit(&self) -> Option<&Fit> {
        match self {
            Planned::Fit(fit) => Some(fit),
            _ => None,
        }
    }

    pub fn is_waiting(&self) -> bool {
        matches!(self, Planned::Waiting(_))
    }
}

/// Whether the plan can refuse a run on `device`: a CUDA run's can (see
/// `memory::fit`), as can an `auto` one in a CUDA build.
pub fn may_refuse(device: config::Device) -> bool {
    match device {
        config::Device::Cuda(_) => true,
        config::Device::Auto => CUDA_BUILT,
        config::Device::Cpu => false,
    }
}

/// A model's config, or why there is none yet.
enum Lookup {
    Found(Box<BertConfig>),
    Missing,
    Waiting(&'static str),
}

impl MemoryProbe {
    /// A probe that finds models' configs with `locate`.
    pub fn with_locator(locate: Locator) -> Self {
        Self {
            gpus: None,
            models: HashMap::new(),
            locate,
            seen: None,
        }
    }

    /// Uses these GPUs instead of asking `nvidia-smi` (tests, and a refresh).
    pub fn set_gpus(&mut self, gpus: Gpus) {
        self.gpus = Some(Answer::Ready(gpus));
    }

    /// The plan for `config`, as far as it is known this frame; `typing`:
    /// the model field has the keyboard. Returns at once.
    pub fn plan(&mut self, config: &RunConfig, ctx: &egui::Context, typing: bool) -> Planned {
        // Asked at once whatever the device, so that a switch to CUDA finds
        // the answer in.
        let gpus = self
            .gpus
            .get_or_insert_with(|| ask("squadlab-nvidia-smi", ctx, query_gpus))
            .poll(|| Err("the nvidia-smi query ended without an answer".into()))
            .cloned();
        let model = match self.model(&config.model, ctx, typing) {
            Lookup::Found(model) => model,
            Lookup::Missing => return Planned::NotAtHand,
            Lookup::Waiting(what) => return Planned::Waiting(what),
        };
        let gpus = match gpus {
            Some(gpus) => gpus,
            // The runs whose plan reads the GPUs are those it may refuse.
            None if may_refuse(config.device) => {
                return Planned::Waiting("asking nvidia-smi about the GPUs")
            }
            // A CPU run's plan reads no GPU.
            None => Err("not asked yet".into()),
        };
        let device = device_memory(config.device, &gpus);
        Planned::Fit(Box::new(check(config, &model, &device)))
    }

    /// The config of `source`: built in for the paper's models (no I/O, so
    /// here), else from the locator's thread, started once the text settles.
    fn model(&mut self, source: &ModelSource, ctx: &egui::Context, typing: bool) -> Lookup {
        let key = source.as_str();
        if let Some(known) = BertConfig::known(key.trim_start_matches("hub:")) {
            return Lookup::Found(Box::new(known));
        }
        if !self.models.contains_key(key) {
            let unchanged = self.unchanged_for(key);
            if typing && unchanged < SETTLE {
                // Look again when the text may have settled.
                ctx.request_repaint_after(SETTLE - unchanged);
                return Lookup::Waiting("the model is looked for when you stop typing");
            }
            let (locate, source) = (self.locate.clone(), source.clone());
            let answer = ask("squadlab-locate-model", ctx, move || locate(&source));
            self.models.insert(key.to_string(), answer);
        }
        match self.models.get_mut(key).and_then(|a| a.poll(|| None)) {
            Some(Some(model)) => Lookup::Found(Box::new(model.clone())),
            Some(None) => Lookup::Missing,
            None => Lookup::Waiting("finding the model's config"),
        }
    }

    /// How long the model text has been `key`.
    fn unchanged_for(&mut self, key: &str) -> Duration {
        match &self.seen {
            Some((seen, since)) if seen == key => since.elapsed(),
            _ => {
                self.seen = Some((key.to_string(), Instant::now()));
                Duration::ZERO
            }
        }
    }
}

/// The colour of the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// A CUDA run that cannot fit: the error colour, and no launch.
    Refused,
    /// A CPU run that may not fit: the warning colour, launch anyway.
    Warning,
    Plain,
}

/// The line's colour for `fit`, from the check's own flags (its message
/// carries no "warning:" prefix to look for).
pub fn tone(fit: &Fit) -> Tone {
    if fit.refuse {
        Tone::Refused
    } else if fit.warn {
        Tone::Warning
    } else {
        Tone::Plain
    }
}

/// The line under the form.
pub fn show(ui: &mut egui::Ui, planned: &Planned) {
    match planned {
        Planned::Fit(fit) => match tone(fit) {
            Tone::Refused => {
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    format!("- memory: {}", fit.message),
                );
            }
            Tone::Warning => {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!("Memory: training {}", fit.message),
                );
            }
            Tone::Plain => {
                ui.label(format!("Memory: training {}", fit.message))
                    .on_hover_text(breakdown(fit));
            }
        },
        Planned::NotAtHand => {
            ui.weak("Memory: not planned (the model's config.json is not on this machine yet)");
        }
        Planned::Waiting(why) => {
            ui.weak(format!("Memory: planning ({why})"));
        }
    }
}

fn breakdown(fit: &Fit) -> String {
    use squadlab_core::memory::show_bytes;
    let p = &fit.plan;
    format!(
        "weights {}, AdamW {}, gradients {}, activations {}, dropout masks {}, \
         gradients candle keeps {}, backward workspace {}, CUDA runtime {}",
        show_bytes(p.parameters),
        show_bytes(p.optimizer),
        show_bytes(p.gradients),
        show_bytes(p.activation_bytes()),
        show_bytes(p.dropout_masks),
        show_bytes(p.retained_gradients),
        show_bytes(p.backward_workspace),
        show_bytes(p.runtime),
    )
}
