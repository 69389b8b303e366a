//! The New-run form: a `RunConfig` started from a preset, a config file or a
//! past run, checked by the same validation as the CLI on every edit, then
//! queued for the device.

use super::browse::{Browser, Purpose};
use super::context::{AppContext, Request, View};
use super::state::Tab;
use squadlab_core::config::{
    DType, DataSource, Device, Graph, ModelSource, RunConfig, SaveStrategy,
};
use std::path::{Path, PathBuf};

/// The presets shipped in experiments/, built in so the app has them anywhere.
const BUILTIN_PRESETS: [(&str, &str); 8] = [
    (
        "minilm-300q.ron",
        include_str!("../../../experiments/minilm-300q.ron"),
    ),
    (
        "minilm-squad-quick.ron",
        include_str!("../../../experiments/minilm-squad-quick.ron"),
    ),
    (
        "bert-base-squad.ron",
        include_str!("../../../experiments/bert-base-squad.ron"),
    ),
    (
        "bert-large-squad.ron",
        include_str!("../../../experiments/bert-large-squad.ron"),
    ),
    (
        "roberta-base-squad.ron",
        include_str!("../../../experiments/roberta-base-squad.ron"),
    ),
    (
        "distilbert-base-squad.ron",
        include_str!("../../../experiments/distilbert-base-squad.ron"),
    ),
    (
        "electra-base-squad.ron",
        include_str!("../../../experiments/electra-base-squad.ron"),
    ),
    (
        "albert-base-v2-squad.ron",
        include_str!("../../../experiments/albert-base-v2-squad.ron"),
    ),
];

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum DataMode {
    Hub,
    Local,
}

pub struct NewRunForm {
    pub config: RunConfig,
    /// Where the config came from: a preset, a file or a run.
    pub origin: String,
    pub model: String,
    pub data_mode: DataMode,
    pub hub_dataset: String,
    pub train: String,
    pub validation: String,
    pub tags: String,
    pub notes: String,
    /// Compute threads for the run.
    pub threads: usize,
    /// The run launched last, to select it.
    pub launched: Option<String>,
    /// Behind the memory line under the form.
    pub memory: super::memory_line::MemoryProbe,
}

/// All cores but one on small machines, so the desktop stays responsive.
pub fn default_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores <= 8 {
        cores.saturating_sub(1).max(1)
    } else {
        cores - 2
    }
}

impl Default for NewRunForm {
    fn default() -> Self {
        Self::new()
    }
}

impl NewRunForm {
    pub fn new() -> Self {
        let mut form = Self {
            config: RunConfig::default(),
            origin: String::new(),
            model: String::new(),
            data_mode: DataMode::Local,
            hub_dataset: "rajpurkar/squad".into(),
            train: String::new(),
            validation: String::new(),
            tags: String::new(),
            notes: String::new(),
            threads: default_threads(),
            launched: None,
            memory: Default::default(),
        };
        let (name, text) = BUILTIN_PRESETS[0];
        if let Ok(c) = RunConfig::from_ron(text, name) {
            form.load_config(c, format!("preset {name}"));
        }
        form
    }

    /// Fills the form from a config.
    pub fn load_config(&mut self, config: RunConfig, origin: String) {
        self.model = config.model.as_str().to_string();
        let train = config.data.train.as_str().to_string();
        match train.strip_prefix("hub:") {
            Some(id) => {
                self.data_mode = DataMode::Hub;
                self.hub_dataset = id.to_string();
            }
            None => {
                self.data_mode = DataMode::Local;
                self.train = train;
                self.validation = config.data.validation.as_str().to_string();
            }
        }
        self.config = config;
        self.origin = origin;
    }

    pub fn chose_path(&mut self, purpose: Purpose, path: PathBuf) {
        let text = path.display().to_string();
        match purpose {
            Purpose::ModelFolder => self.model = text,
            Purpose::TrainFile => self.train = text,
            Purpose::ValidationFile => self.validation = text,
            Purpose::ConfigFile => match RunConfig::load(&path) {
                Ok(c) => self.load_config(c, text),
                Err(e) => self.origin = format!("cannot load {text}: {e:#}"),
            },
            Purpose::Store | Purpose::SweepFile => {}
        }
    }

    /// The config as the form stands, and every problem with it: the same
    /// checks, in the same words, as `squadlab check-config`.
    pub fn build(&self) -> (RunConfig, Vec<String>) {
        let mut config = self.config.clone();
        let mut problems = Vec::new();
        match ModelSource::try_from(self.model.clone()) {
            Ok(m) => config.model = m,
            Err(e) => problems.push(format!("model: {e}")),
        }
        let (train, validation) = match self.data_mode {
            DataMode::Hub => {
                let hub = DataSource::try_from(format!("hub:{}", self.hub_dataset.trim()));
                (hub.clone(), hub)
            }
            DataMode::Local => (
                DataSource::try_from(self.train.clone()),
                DataSource::try_from(self.validation.clone()),
            ),
        };
        match train {
            Ok(t) => config.data.train = t,
            Err(e) => problems.push(format!("data.train: {e}")),
        }
        match validation {
            Ok(v) => config.data.validation = v,
            Err(e) => problems.push(format!("data.validation: {e}")),
        }
        if let Err(e) = config.validate() {
            problems.extend(e.problems());
        }
        (config, problems)
    }

    pub fn tag_list(&self) -> Vec<String> {
        self.tags
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect()
    }
}

/// The presets: built in, plus any `.ron` in ./experiments/.
fn presets() -> Vec<(String, Result<RunConfig, String>)> {
    let mut out: Vec<(String, Result<RunConfig, String>)> = BUILTIN_PRESETS
        .iter()
        .map(|(name, text)| {
            (
                name.to_string(),
                RunConfig::from_ron(text, name).map_err(|e| e.to_string()),
            )
        })
        .collect();
    let local = Path::new("experiments");
    if let Ok(rd) = std::fs::read_dir(local) {
        let mut files: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "ron"))
            .collect();
        files.sort();
        for path in files {
            let name = path.display().to_string();
            if out.iter().any(|(n, _)| path.ends_with(n)) {
                continue;
            }
            out.push((name, RunConfig::load(&path).map_err(|e| format!("{e:#}"))));
        }
    }
    out
}

/// The families squadlab trains, each with its published hub checkpoints:
/// picking one fills the model field. A folder or another hub id of any of
/// them works too; its config.json's `model_type` says the family.
fn family_menu(ui: &mut egui::Ui, model: &mut String) {
    let current = squadlab_core::model::Family::from_model_id(model);
    let title = current.map_or("Family".to_string(), |f| f.label().to_string());
    ui.menu_button(title, |ui| {
        for family in squadlab_core::model::Family::ALL {
            ui.label(egui::RichText::new(family.label()).strong());
            for id in family.hub_models() {
                if ui.button(*id).clicked() {
                    *model = id.to_string();
                    ui.close();
                }
            }
        }
    })
    .response
    .on_hover_text(
        "BERT, RoBERTa, DistilBERT or ELECTRA: each proven equal to transformers (README)",
    );
}

/// The model field's id, to ask whether it is being typed in.
fn model_field_id() -> egui::Id {
    egui::Id::unique("new-run-model")
}

/// A labelled row whose label turns red when a problem names the field.
fn field(
    ui: &mut egui::Ui,
    problems: &[String],
    name: &str,
    label: &str,
    add: impl FnOnce(&mut egui::Ui),
) {
    let problem = problems
        .iter()
        .find(|p| p.split([' ', ':']).next() == Some(name));
    let text = egui::RichText::new(label);
    let response = match problem {
        Some(_) => ui.colored_label(ui.visuals().error_fg_color, text),
        None => ui.label(text),
    };
    if let Some(p) = problem {
        response.on_hover_text(p);
    }
    ui.horizontal(|ui| {
        add(ui);
        if let Some(p) = problem {
            ui.colored_label(ui.visuals().error_fg_color, p);
        }
    });
    ui.end_row();
}

fn optional_count(ui: &mut egui::Ui, value: &mut Option<usize>, default: usize) {
    let mut on = value.is_some();
    ui.checkbox(&mut on, "");
    match (on, value.as_mut()) {
        (true, Some(v)) => {
            ui.add(egui::DragValue::new(v).range(1..=usize::MAX));
        }
        (true, None) => *value = Some(default),
        (false, _) => *value = None,
    }
}

impl View for NewRunForm {
    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut AppContext<'_>) {
        ui.horizontal(|ui| {
            ui.label("Start from");
            egui::ComboBox::from_id_salt("preset")
                .selected_text(&self.origin)
                .width(320.0)
                .show_ui(ui, |ui| {
                    for (name, config) in presets() {
                        match config {
                            Ok(c) => {
                                if ui
                                    .selectable_label(false, format!("preset {name}"))
                                    .clicked()
                                {
                                    self.load_config(c, format!("preset {name}"));
                                }
                            }
                            Err(e) => {
                                ui.colored_label(ui.visuals().error_fg_color, e);
                            }
                        }
                    }
                });
            if ui.button("Open config…").clicked() {
                cx.request(Request::Browse(Box::new(Browser::file(
                    Purpose::ConfigFile,
                    Path::new("experiments"),
                ))));
            }
            ui.weak("or “Clone config” on any run in the sidebar");
        });
        ui.separator();
        let (config, mut problems) = self.build();
        // While the model field is typed in, the model is looked for only
        // once its text settles (memory_line.rs).
        let typing = ui.ctx().memory(|m| m.has_focus(model_field_id()));
        let planned = self.memory.plan(&config, ui.ctx(), typing);
        let fit = planned.fit();
        if let Some(fit) = fit.filter(|f| f.refuse) {
            problems.push(format!("per_device_train_batch_size: {}", fit.message));
        }
        // A run the plan may refuse waits for the plan before it can launch.
        let waiting = planned.is_waiting() && super::memory_line::may_refuse(config.device);
        egui::ScrollArea::vertical()
            .id_salt("form")
            .max_height(ui.available_height() - 90.0)
            .show(ui, |ui| {
                egui::Grid::new("new-run")
                    .num_columns(2)
                    .spacing([12.0, 6.0])
                    .show(ui, |ui| self.form_fields(ui, cx, &problems));
            });
        ui.separator();
        for p in problems
            .iter()
            .filter(|p| fit.is_none_or(|f| !p.ends_with(&f.message)))
        {
            ui.colored_label(ui.visuals().error_fg_color, format!("- {p}"));
        }
        super::memory_line::show(ui, &planned);
        ui.horizontal(|ui| {
            let ok = problems.is_empty() && !waiting;
            if ui.add_enabled(ok, egui::Button::new("Launch")).clicked() {
                self.launch(cx, config);
            }
            let running = cx.jobs
                .list
                .iter()
                .filter(|j| matches!(j.state, super::jobs::JobState::Running))
                .count();
            let queued = cx.jobs
                .list
                .iter()
                .filter(|j| matches!(j.state, super::jobs::JobState::Queued))
                .count();
            ui.weak(format!(
                "{running} training, {queued} queued in this app; one run per device per machine, shared with `squadlab worker`"
            ));
        });
        ui.checkbox(
            &mut cx.state.train_store_queue,
            "Also train runs queued in the store by the CLI or a sweep",
        )
        .on_hover_text("this app takes them as a `squadlab worker` would; a worker may take this app's queued runs too");
    }
}

impl NewRunForm {
    /// The form, section by section, in a two-column grid: each field with
    /// the validation problems that name it.
    fn form_fields(&mut self, ui: &mut egui::Ui, cx: &mut AppContext<'_>, problems: &[String]) {
        let mut browse = self.source_fields(ui, problems);
        browse = browse.or(self.data_fields(ui, problems));
        let c = &mut self.config;
        window_fields(ui, problems, c);
        optimisation_fields(ui, problems, c);
        checkpoint_fields(ui, problems, c);
        evaluation_fields(ui, problems, c);
        device_fields(ui, problems, c);
        self.run_fields(ui, problems);
        if let Some(browser) = browse {
            cx.request(Request::Browse(Box::new(browser)));
        }
    }

    /// Name and model; a chooser to open, if the model's folder button was clicked.
    fn source_fields(&mut self, ui: &mut egui::Ui, problems: &[String]) -> Option<Browser> {
        let f = self;
        let mut browse = None;
        field(ui, problems, "name", "Name", |ui| {
            ui.add(egui::TextEdit::singleline(&mut f.config.name).desired_width(300.0));
        });
        field(ui, problems, "model", "Model", |ui| {
            ui.add(
                egui::TextEdit::singleline(&mut f.model)
                    .id(model_field_id())
                    .desired_width(360.0)
                    .hint_text("hub id, pip:PACKAGE, or a folder"),
            );
            if ui.button("Folder…").clicked() {
                browse = Some(Browser::folder(Purpose::ModelFolder, Path::new(&f.model)));
            }
            family_menu(ui, &mut f.model);
        });
        browse
    }

    /// The data's source: the hub, or local files.
    fn data_fields(&mut self, ui: &mut egui::Ui, problems: &[String]) -> Option<Browser> {
        let f = self;
        let mut browse = None;
        field(ui, problems, "data", "Data", |ui| {
            ui.radio_value(&mut f.data_mode, DataMode::Hub, "SQuAD from the hub");
            ui.radio_value(&mut f.data_mode, DataMode::Local, "local files");
        });
        match f.data_mode {
            DataMode::Hub => field(ui, problems, "data.train", "Hub dataset", |ui| {
                ui.text_edit_singleline(&mut f.hub_dataset);
            }),
            DataMode::Local => {
                field(ui, problems, "data.train", "Training file", |ui| {
                    ui.add(
                        egui::TextEdit::singleline(&mut f.train)
                            .desired_width(360.0)
                            .hint_text("path, or data:FILE in $SQUADLAB_DATA"),
                    );
                    if ui.button("File…").clicked() {
                        browse = Some(Browser::file(Purpose::TrainFile, Path::new(&f.train)));
                    }
                });
                field(ui, problems, "data.validation", "Validation file", |ui| {
                    ui.add(egui::TextEdit::singleline(&mut f.validation).desired_width(360.0));
                    if ui.button("File…").clicked() {
                        browse = Some(Browser::file(
                            Purpose::ValidationFile,
                            Path::new(&f.validation),
                        ));
                    }
                });
            }
        }
        browse
    }

    /// The threads this app trains with, tags and notes.
    fn run_fields(&mut self, ui: &mut egui::Ui, problems: &[String]) {
        let f = self;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        field(ui, problems, "threads", "Threads", |ui| {
            ui.add(egui::DragValue::new(&mut f.threads).range(1..=cores));
            ui.weak(format!("of {cores} cores"));
        });
        field(ui, problems, "tags", "Tags", |ui| {
            ui.add(egui::TextEdit::singleline(&mut f.tags).hint_text("comma, separated"));
        });
        field(ui, problems, "notes", "Notes", |ui| {
            ui.add(egui::TextEdit::multiline(&mut f.notes).desired_rows(2));
        });
    }

    /// Creates the run folder and queues the run; it starts when its device is free.
    pub fn launch(&mut self, cx: &mut AppContext<'_>, config: RunConfig) {
        let tags = self.tag_list();
        let result = squadlab_core::store::new_run(&cx.runs.store, &config, &tags, &self.notes)
            .and_then(|(dir, record)| {
                let id = record.id.clone();
                cx.jobs
                    .submit(dir, record, config, None, Some(self.threads))?;
                Ok(id)
            });
        match result {
            Ok(id) => {
                cx.notify(format!("queued run {id}"));
                self.launched = Some(id.clone());
                cx.state.selected = vec![id];
                cx.request(Request::Show(Tab::Live));
                cx.runs.refresh(&cx.state.selected, true);
            }
            Err(e) => cx.error(format!("cannot launch: {e:#}")),
        }
    }
}

/// How much of the data, and how it is cut into windows.
fn window_fields(ui: &mut egui::Ui, problems: &[String], c: &mut RunConfig) {
    field(
        ui,
        problems,
        "data.max_train_samples",
        "Training questions (first N)",
        |ui| optional_count(ui, &mut c.data.max_train_samples, 1000),
    );
    field(
        ui,
        problems,
        "data.max_eval_samples",
        "Eval questions (first N)",
        |ui| optional_count(ui, &mut c.data.max_eval_samples, 1000),
    );
    field(
        ui,
        problems,
        "data.max_context_chars",
        "Longest context (chars)",
        |ui| {
            ui.add(egui::DragValue::new(&mut c.data.max_context_chars).range(1..=usize::MAX))
                .on_hover_text("A longer context is a broken file: the load stops and says so");
        },
    );
    field(ui, problems, "max_seq_length", "Max length", |ui| {
        ui.add(egui::DragValue::new(&mut c.max_seq_length));
    });
    field(ui, problems, "doc_stride", "Stride", |ui| {
        ui.add(egui::DragValue::new(&mut c.doc_stride));
    });
    field(ui, problems, "dynamic_padding", "Padding", |ui| {
        ui.checkbox(&mut c.dynamic_padding, "to each batch's longest window")
            .on_hover_text("Faster; the reference pads every window to max length");
    });
}

/// Batches, the schedule and the optimiser's settings.
fn optimisation_fields(ui: &mut egui::Ui, problems: &[String], c: &mut RunConfig) {
    field(
        ui,
        problems,
        "per_device_train_batch_size",
        "Batch size",
        |ui| {
            ui.add(egui::DragValue::new(&mut c.per_device_train_batch_size));
        },
    );
    field(
        ui,
        problems,
        "gradient_accumulation_steps",
        "Gradient accumulation",
        |ui| {
            ui.add(egui::DragValue::new(&mut c.gradient_accumulation_steps));
        },
    );
    field(ui, problems, "num_train_epochs", "Epochs", |ui| {
        ui.add(egui::DragValue::new(&mut c.num_train_epochs).speed(0.1));
    });
    field(ui, problems, "max_steps", "Max steps", |ui| {
        let mut v = c.max_steps.map(|s| s as usize);
        optional_count(ui, &mut v, 100);
        c.max_steps = v.map(|s| s as u64);
    });
    field(ui, problems, "learning_rate", "Learning rate", |ui| {
        ui.add(
            egui::DragValue::new(&mut c.learning_rate)
                .speed(1e-6)
                .custom_formatter(|v, _| format!("{v:.2e}")),
        );
    });
    field(ui, problems, "weight_decay", "Weight decay", |ui| {
        ui.add(egui::DragValue::new(&mut c.weight_decay).speed(0.001));
    });
    field(ui, problems, "lr_scheduler_type", "LR schedule", |ui| {
        use squadlab_core::config::LrSchedulerType as L;
        egui::ComboBox::from_id_salt("lr-schedule")
                .selected_text(format!("{:?}", c.lr_scheduler_type))
                .show_ui(ui, |ui| {
                    for kind in [
                        L::Linear,
                        L::Cosine,
                        L::CosineWithRestarts,
                        L::Polynomial,
                        L::Constant,
                        L::ConstantWithWarmup,
                    ] {
                        ui.selectable_value(&mut c.lr_scheduler_type, kind, format!("{kind:?}"));
                    }
                })
                .response
                .on_hover_text("Hugging Face's lr_scheduler_type; its kwargs (num_cycles, power, lr_end) are set in the config file");
    });
    field(ui, problems, "warmup_ratio", "Warmup ratio", |ui| {
        ui.add(egui::DragValue::new(&mut c.warmup_ratio).speed(0.01));
    });
    field(ui, problems, "max_grad_norm", "Max grad norm", |ui| {
        ui.add(egui::DragValue::new(&mut c.max_grad_norm).speed(0.1));
    });
    field(ui, problems, "seed", "Seed", |ui| {
        ui.add(egui::DragValue::new(&mut c.seed));
    });
}

/// Logging and checkpoints.
fn checkpoint_fields(ui: &mut egui::Ui, problems: &[String], c: &mut RunConfig) {
    field(ui, problems, "logging_steps", "Log every N steps", |ui| {
        ui.add(egui::DragValue::new(&mut c.logging_steps));
    });
    field(ui, problems, "save_strategy", "Checkpoints", |ui| {
        for (s, label) in [
            (SaveStrategy::No, "none"),
            (SaveStrategy::Epoch, "each epoch"),
            (SaveStrategy::Steps, "every N steps"),
        ] {
            ui.radio_value(&mut c.save_strategy, s, label);
        }
        if c.save_strategy == SaveStrategy::Steps {
            ui.add(egui::DragValue::new(&mut c.save_steps).prefix("N = "));
        }
    });
    field(ui, problems, "save_total_limit", "Keep checkpoints", |ui| {
        optional_count(ui, &mut c.save_total_limit, 2)
    });
}

/// Evaluation during training, the best model, and the answers' decoding.
fn evaluation_fields(ui: &mut egui::Ui, problems: &[String], c: &mut RunConfig) {
    field(
        ui,
        problems,
        "eval_strategy",
        "Evaluate during training",
        |ui| {
            use squadlab_core::config::EvalStrategy as E;
            for (s, label) in [
                (E::No, "no"),
                (E::Epoch, "each epoch"),
                (E::Steps, "every N steps"),
            ] {
                ui.radio_value(&mut c.eval_strategy, s, label);
            }
            if c.eval_strategy == E::Steps {
                let mut every = c.eval_every();
                ui.add(egui::DragValue::new(&mut every).prefix("N = "));
                c.eval_steps = Some(every);
            }
        },
    );
    if c.eval_strategy != squadlab_core::config::EvalStrategy::No {
        field(
            ui,
            problems,
            "in_training_eval_samples",
            "In-training questions",
            |ui| {
                optional_count(ui, &mut c.in_training_eval_samples, 500);
                ui.weak("first N questions; off: all (the final evaluation always scores all)");
            },
        );
        field(
            ui,
            problems,
            "load_best_model_at_end",
            "Load best at end",
            |ui| {
                use squadlab_core::config::BestMetric as B;
                ui.checkbox(&mut c.load_best_model_at_end, "");
                let mut metric = c.metric_for_best_model.unwrap_or_default();
                ui.label("by");
                ui.radio_value(&mut metric, B::F1, "F1");
                ui.radio_value(&mut metric, B::ExactMatch, "EM");
                if c.metric_for_best_model.is_some() || metric != B::default() {
                    c.metric_for_best_model = Some(metric);
                }
            },
        );
    }
    field(ui, problems, "n_best_size", "n-best", |ui| {
        ui.add(egui::DragValue::new(&mut c.n_best_size));
    });
    field(
        ui,
        problems,
        "max_answer_length",
        "Max answer length",
        |ui| {
            ui.add(egui::DragValue::new(&mut c.max_answer_length));
        },
    );
}

/// Where and at what precision the run trains.
fn device_fields(ui: &mut egui::Ui, problems: &[String], c: &mut RunConfig) {
    field(ui, problems, "device", "Device", |ui| {
        ui.radio_value(&mut c.device, Device::Auto, "auto");
        ui.radio_value(&mut c.device, Device::Cpu, "cpu");
        ui.radio_value(&mut c.device, Device::Cuda(0), "cuda:0");
    });
    field(ui, problems, "dtype", "Precision", |ui| {
        ui.radio_value(&mut c.dtype, DType::F32, "f32");
        ui.radio_value(&mut c.dtype, DType::Bf16, "bf16");
        ui.radio_value(&mut c.dtype, DType::F16, "f16");
    });
    field(ui, problems, "graph", "Graph", |ui| {
        ui.radio_value(&mut c.graph, Graph::Auto, "auto")
                .on_hover_text("the lean step (f32 on the CPU; f32 or bf16 on CUDA): an explicit backward pass over fused ops, each checked against candle's ops before a run trusts it, Philox dropout");
        ui.radio_value(&mut c.graph, Graph::Autograd, "autograd")
                .on_hover_text("candle's autograd over the fused CPU kernels, with the dropout of runs from before the lean step");
        ui.radio_value(&mut c.graph, Graph::Generic, "generic (CUDA's ops)")
                .on_hover_text("candle's ops on every device, no fused kernels: the graph an f16 CUDA run trains on");
    });
    field(ui, problems, "tf32", "TF32", |ui| {
        ui.checkbox(&mut c.tf32, "f32 products on TF32 tensor cores (CUDA)")
                .on_hover_text("faster f32 matrix products on CUDA with a 10-bit mantissa; bf16/f16 and the CPU are unaffected");
    });
}
