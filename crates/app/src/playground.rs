//! The playground: a finished run's model (or one of its checkpoints) answers
//! a question about any passage, with the answer marked in the passage and the
//! top candidates listed. Loading and answering run on worker threads.

use super::context::{AppContext, View};
use super::spans::{highlighted, PREDICTED};
use crossbeam_channel::{bounded, Receiver};
use squadlab_core::config::ModelSource;
use squadlab_core::data::WindowParams;
use squadlab_core::eval::{Answer, Answerer, PostprocessParams};
use squadlab_core::train::checkpoint::list_checkpoints;
use std::path::PathBuf;
use std::sync::Arc;

type Reply<T> = Receiver<Result<T, String>>;

#[derive(Default)]
pub struct Playground {
    /// The model folder chosen: a run's `model/` or one of its checkpoints.
    pub model_dir: Option<PathBuf>,
    model: Option<(PathBuf, Arc<Answerer>)>,
    loading: Option<(PathBuf, Reply<Answerer>)>,
    pub passage: String,
    pub question: String,
    /// The passage asked about, and the reply on its way.
    asking: Option<(String, Reply<Answer>)>,
    pub answer: Option<(String, Answer)>,
    pub error: Option<String>,
    /// The model folder that failed to load: not retried until another is picked.
    failed: Option<PathBuf>,
}

impl Playground {
    fn take_replies(&mut self) {
        if let Some((dir, rx)) = &self.loading {
            if let Ok(result) = rx.try_recv() {
                match result {
                    Ok(a) => self.model = Some((dir.clone(), Arc::new(a))),
                    Err(e) => {
                        self.error = Some(format!("cannot load {}: {e}", dir.display()));
                        self.failed = Some(dir.clone());
                    }
                }
                self.loading = None;
            }
        }
        if let Some((passage, rx)) = &self.asking {
            if let Ok(result) = rx.try_recv() {
                match result {
                    Ok(a) => self.answer = Some((passage.clone(), a)),
                    Err(e) => self.error = Some(e),
                }
                self.asking = None;
            }
        }
    }

    pub fn is_busy(&self) -> bool {
        self.loading.is_some() || self.asking.is_some()
    }

    fn load(&mut self, dir: PathBuf, window: WindowParams, params: PostprocessParams) {
        self.model = None;
        self.error = None;
        self.failed = None;
        let (tx, rx) = bounded(1);
        let source = ModelSource::try_from(dir.display().to_string());
        std::thread::spawn(move || {
            let result = source
                .map_err(|e| anyhow::anyhow!(e))
                .and_then(|s| Answerer::load(&s, window, params));
            let _ = tx.send(result.map_err(|e| format!("{e:#}")));
        });
        self.loading = Some((dir, rx));
    }

    /// Asks the loaded model; the answer arrives in a later frame.
    pub fn ask(&mut self) {
        let Some((_, model)) = &self.model else {
            return;
        };
        self.error = None;
        let (model, q, p) = (model.clone(), self.question.clone(), self.passage.clone());
        let (tx, rx) = bounded(1);
        std::thread::spawn(move || {
            let _ = tx.send(model.answer(&q, &p).map_err(|e| format!("{e:#}")));
        });
        self.asking = Some((self.passage.clone(), rx));
    }
}

impl View for Playground {
    fn poll(&mut self) {
        self.take_replies();
    }

    fn is_waiting(&self) -> bool {
        self.is_busy()
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut AppContext<'_>) {
        let Some(id) = cx.primary().map(str::to_string) else {
            ui.weak("Select a finished run in the sidebar to ask its model questions.");
            return;
        };
        let Some(view) = cx.runs.get(&id) else {
            return;
        };
        let model_dir = view.entry.dir.join("model");
        let config = view.entry.record.as_ref().and_then(|r| r.config.clone());
        let (Some(config), true) = (config, view.is_finished() && model_dir.is_dir()) else {
            ui.weak(format!(
                "{} has no finished model to ask; pick a finished, trained run.",
                view.label()
            ));
            return;
        };
        let mut choices = vec![("final model".to_string(), model_dir.clone())];
        choices.extend(
            list_checkpoints(&view.entry.dir)
                .into_iter()
                .map(|(step, path)| (format!("checkpoint at step {step}"), path)),
        );
        let pg = &mut *self;
        if pg
            .model_dir
            .as_ref()
            .is_none_or(|d| !choices.iter().any(|(_, p)| p == d))
        {
            pg.model_dir = Some(model_dir);
        }
        ui.horizontal(|ui| {
            ui.label("Model");
            let current = choices
                .iter()
                .find(|(_, p)| Some(p) == pg.model_dir.as_ref())
                .map_or(String::new(), |(l, _)| l.clone());
            egui::ComboBox::from_id_salt("pg-model")
                .selected_text(current)
                .show_ui(ui, |ui| {
                    for (label, path) in &choices {
                        ui.selectable_value(&mut pg.model_dir, Some(path.clone()), label);
                    }
                });
            if pg.loading.is_some() {
                ui.spinner();
                ui.label("loading the model…");
            }
        });
        let want = pg.model_dir.clone();
        let have = pg
            .model
            .as_ref()
            .map(|(d, _)| d.clone())
            .or(pg.loading.as_ref().map(|(d, _)| d.clone()));
        if let (Some(want), false) = (&want, want == have) {
            if pg.failed.as_ref() == Some(want) {
                // The chosen model failed to load: nothing else answers in its name.
                pg.model = None;
            } else {
                let window = WindowParams {
                    max_length: config.max_seq_length,
                    stride: config.doc_stride,
                };
                let params = PostprocessParams {
                    n_best_size: config.n_best_size,
                    max_answer_length: config.max_answer_length,
                    null_score_diff_threshold: config
                        .version_2_with_negative
                        .then_some(config.null_score_diff_threshold),
                };
                pg.load(want.clone(), window, params);
            }
        }
        if let Some((_, m)) = &pg.model {
            if let Some(w) = &m.warning {
                ui.colored_label(ui.visuals().warn_fg_color, w);
            }
        }
        ui.label("Passage");
        ui.add(
            egui::TextEdit::multiline(&mut pg.passage)
                .desired_rows(8)
                .desired_width(f32::INFINITY)
                .hint_text("Paste a passage"),
        );
        ui.horizontal(|ui| {
            ui.label("Question");
            let q = ui.add(egui::TextEdit::singleline(&mut pg.question).desired_width(500.0));
            let ready = pg.model.is_some() && pg.asking.is_none();
            let enter = q.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if ui.add_enabled(ready, egui::Button::new("Answer")).clicked() || (enter && ready) {
                pg.ask();
            }
            if pg.asking.is_some() {
                ui.spinner();
            }
        });
        if let Some(e) = &pg.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        let Some((passage, answer)) = &pg.answer else {
            return;
        };
        ui.separator();
        let p = &answer.prediction;
        match p.best() {
            Some(best) => {
                ui.horizontal(|ui| {
                    ui.label("Answer:");
                    ui.label(
                        egui::RichText::new(&best.text)
                            .strong()
                            .background_color(PREDICTED)
                            .color(egui::Color32::BLACK),
                    );
                    ui.weak(format!(
                        "score {:.3} · {} window(s)",
                        best.score, answer.windows
                    ));
                });
                ui.label(highlighted(
                    passage,
                    &[],
                    Some((best.start_char, best.end_char)),
                    ui,
                ));
            }
            None => {
                ui.label("No span qualified as an answer.");
            }
        }
        egui::Grid::new("pg-candidates")
            .striped(true)
            .show(ui, |ui| {
                for c in p.nbest.iter().take(10) {
                    ui.monospace(format!("{:8.3}", c.score));
                    ui.label(&c.text);
                    ui.end_row();
                }
            });
    }
}
