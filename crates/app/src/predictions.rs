//! The predictions browser: every question of a run with its answer, the gold
//! answers and its EM/F1; filters, sorting, the context with the spans marked,
//! the n-best list, and the questions that flipped against another run.

use super::context::{AppContext, View};
use super::predictions_data::{load_prediction_set, PredictionSet, Question};
use super::runs::Runs;
use super::spans::{highlighted, GOLD, PREDICTED};
use crossbeam_channel::{bounded, Receiver};
use egui::Color32;
use squadlab_core::report::{diff_runs, Dimension};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Category {
    #[default]
    All,
    /// Exact match.
    Correct,
    /// Some token overlap, no exact match.
    Partial,
    /// F1 of zero.
    Wrong,
    /// Exact match in one run and not in the other.
    Flipped,
    /// SQuAD 2.0: questions with an answer.
    Answerable,
    /// SQuAD 2.0: questions without one.
    Unanswerable,
    /// SQuAD 2.0: answered nothing where there is an answer.
    FalseNull,
    /// SQuAD 2.0: answered where there is no answer.
    FalseAnswer,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Sort {
    #[default]
    FileOrder,
    F1Ascending,
    F1Descending,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Filter {
    pub category: Category,
    pub title: Option<usize>,
    /// Only the questions in one bucket of a breakdown (the Analysis view's
    /// bars open the browser so).
    pub bucket: Option<(Dimension, String)>,
    pub search: String,
    pub sort: Sort,
}

/// Which way a question flipped against the compared run.
#[derive(Clone, Debug)]
pub struct FlipInfo {
    pub now_right: bool,
    pub other_answer: String,
    pub other_f1: f64,
}

/// The questions that flipped against the compared run, and what the paired
/// tests (McNemar, the ΔF1 interval) say of the difference.
pub struct Comparison {
    pub flips: HashMap<String, FlipInfo>,
    pub verdict: String,
}

type Flips = Result<Comparison, String>;

#[derive(Default)]
pub struct PredictionsView {
    /// The run's answers, replayed at `threshold` for a SQuAD 2.0 run.
    pub set: Option<Arc<PredictionSet>>,
    /// As loaded, at the run's own threshold.
    loaded: Option<Arc<PredictionSet>>,
    /// SQuAD 2.0: the null threshold the answers are shown at.
    pub threshold: Option<f64>,
    loading: Option<(String, Receiver<Result<PredictionSet, String>>)>,
    /// The run that failed to load, and why.
    pub error: Option<(String, String)>,
    pub filter: Filter,
    shown: Vec<usize>,
    shown_for: Option<(Filter, String, Option<String>)>,
    pub selected: Option<usize>,
    pub compare_with: Option<String>,
    /// The (shown, compared) runs and their flips (or why they could not be read).
    flips: Option<((String, String), Flips)>,
    flips_loading: Option<((String, String), Receiver<Flips>)>,
}

impl PredictionsView {
    /// Starts loading `run` unless it is loaded, loading, or failed already.
    pub fn want(
        &mut self,
        id: &str,
        dir: &std::path::Path,
        record: Option<&squadlab_core::store::RunRecord>,
    ) {
        let have = self.set.as_ref().is_some_and(|s| s.run == id)
            || self.loading.as_ref().is_some_and(|(r, _)| r == id)
            || self.error.as_ref().is_some_and(|(r, _)| r == id);
        if have {
            return;
        }
        self.selected = None;
        let Some(record) = record.cloned() else {
            self.error = Some((id.to_string(), "the run is damaged".into()));
            return;
        };
        let (tx, rx) = bounded(1);
        let dir = dir.to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(load_prediction_set(&dir, &record).map_err(|e| format!("{e:#}")));
        });
        self.loading = Some((id.to_string(), rx));
    }

    pub fn is_loading(&self) -> bool {
        self.loading.is_some() || self.flips_loading.is_some()
    }

    fn take_replies(&mut self) {
        let Some((id, rx)) = &self.loading else {
            return;
        };
        let Ok(result) = rx.try_recv() else {
            return;
        };
        match result {
            Ok(set) => {
                self.threshold = set.null_threshold;
                let set = Arc::new(set);
                self.loaded = Some(set.clone());
                self.set = Some(set);
                self.error = None;
                self.filter.title = None;
            }
            Err(e) => self.error = Some((id.clone(), e)),
        }
        self.loading = None;
        self.shown_for = None;
    }

    /// Replays a SQuAD 2.0 run's null decisions at threshold `t`: every
    /// answer, its EM/F1 and the totals follow.
    pub fn set_threshold(&mut self, t: f64) {
        let Some(loaded) = &self.loaded else { return };
        if loaded.null_threshold.is_none() || self.threshold == Some(t) {
            return;
        }
        self.set = Some(Arc::new(loaded.at_threshold(t)));
        self.threshold = Some(t);
        self.shown_for = None;
    }

    /// The indices of the questions the filter lets through, in display order.
    pub fn shown(&mut self) -> &[usize] {
        let Some(set) = &self.set else {
            return &[];
        };
        let flips_key = self.flips.as_ref().map(|(pair, _)| pair.1.clone());
        let key = (self.filter.clone(), set.run.clone(), flips_key);
        if self.shown_for.as_ref() != Some(&key) {
            let flips = self
                .flips
                .as_ref()
                .and_then(|(_, r)| r.as_ref().ok())
                .map(|c| &c.flips);
            self.shown = filter_questions(set, &self.filter, flips);
            self.shown_for = Some(key);
        }
        &self.shown
    }

    fn flip(&self, id: &str) -> Option<&FlipInfo> {
        self.flips.as_ref()?.1.as_ref().ok()?.flips.get(id)
    }
}

fn category_of(q: &Question) -> Category {
    if q.exact_match > 0.5 {
        Category::Correct
    } else if q.f1 > 0.0 {
        Category::Partial
    } else {
        Category::Wrong
    }
}

pub fn filter_questions(
    set: &PredictionSet,
    filter: &Filter,
    flips: Option<&HashMap<String, FlipInfo>>,
) -> Vec<usize> {
    let needle = filter.search.to_lowercase();
    let mut shown: Vec<usize> = set
        .questions
        .iter()
        .enumerate()
        .filter(|(_, q)| match filter.category {
            Category::All => true,
            Category::Flipped => flips.is_some_and(|f| f.contains_key(&q.id)),
            Category::Answerable => !q.impossible,
            Category::Unanswerable => q.impossible,
            Category::FalseNull => !q.impossible && q.predicted.is_empty(),
            Category::FalseAnswer => q.impossible && !q.predicted.is_empty(),
            c => category_of(q) == c,
        })
        .filter(|(_, q)| filter.title.is_none_or(|t| q.title == t))
        .filter(|(_, q)| {
            filter.bucket.as_ref().is_none_or(|(by, bucket)| {
                let first = q.golds.first().map(|(g, _)| g.as_str());
                by.bucket_of(&q.question, first, &set.contexts[q.context]) == bucket
            })
        })
        .filter(|(_, q)| {
            needle.is_empty()
                || q.question.to_lowercase().contains(&needle)
                || q.predicted.to_lowercase().contains(&needle)
                || q.id.contains(&filter.search)
                || q.golds
                    .iter()
                    .any(|(g, _)| g.to_lowercase().contains(&needle))
        })
        .map(|(i, _)| i)
        .collect();
    match filter.sort {
        Sort::FileOrder => {}
        Sort::F1Ascending => {
            shown.sort_by(|&a, &b| set.questions[a].f1.total_cmp(&set.questions[b].f1))
        }
        Sort::F1Descending => {
            shown.sort_by(|&a, &b| set.questions[b].f1.total_cmp(&set.questions[a].f1))
        }
    }
    shown
}

impl View for PredictionsView {
    fn poll(&mut self) {
        self.take_replies();
    }

    fn is_waiting(&self) -> bool {
        self.is_loading()
    }

    fn settle_for_screenshot(&mut self, cx: &AppContext<'_>) -> bool {
        // Wait for the predictions to load, if there are any to load.
        let scored = cx
            .primary()
            .and_then(|id| cx.runs.get(id))
            .is_some_and(|v| v.entry.is_scored());
        if self.is_loading() || (scored && self.set.is_none() && self.error.is_none()) {
            return false;
        }
        if self.set.is_some() && self.selected.is_none() {
            // A partly right answer shows both highlights at once.
            self.filter.category = Category::Partial;
            self.selected = self.shown().get(2).copied();
            self.filter.category = Category::All;
        }
        true
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut AppContext<'_>) {
        let Some(id) = cx.primary().map(str::to_string) else {
            ui.weak("Select a scored run in the sidebar.");
            return;
        };
        let Some(view) = cx.runs.get(&id) else {
            return;
        };
        if !view.entry.is_scored() {
            ui.weak(format!(
                "{} has no scores yet: its predictions appear when it is evaluated.",
                view.label()
            ));
            return;
        }
        let (dir, record) = (view.entry.dir.clone(), view.entry.record.clone());
        self.want(&id, &dir, record.as_ref());
        if let Some((run, e)) = &self.error {
            if *run == id {
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    format!("cannot show the predictions of {run}: {e}"),
                );
                return;
            }
        }
        let Some(set) = self.set.clone().filter(|s| s.run == id) else {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("loading predictions and questions…");
            });
            return;
        };
        self.prediction_filters(ui, cx, &set, &id);
        if set.null_threshold.is_some() {
            self.threshold_slider(ui, &set);
        }
        let Some(set) = self.set.clone() else {
            return;
        };
        let shown = self.shown().to_vec();
        ui.label(format!(
            "{} of {} questions · EM {:.2} · F1 {:.2}",
            shown.len(),
            set.questions.len(),
            set.exact_match,
            set.f1
        ));
        let list_height = (ui.available_height() * 0.42).max(120.0);
        self.question_list(ui, &set, &shown, list_height);
        ui.separator();
        egui::ScrollArea::vertical()
            .id_salt("detail")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                match self.selected.and_then(|i| set.questions.get(i)) {
                    Some(q) => self.question_detail(ui, &set, q),
                    None => {
                        ui.weak("Pick a question to see its context, spans and candidates.");
                    }
                }
            });
    }
}

impl PredictionsView {
    /// SQuAD 2.0: the null threshold, replayed live over every question.
    fn threshold_slider(&mut self, ui: &mut egui::Ui, set: &PredictionSet) {
        let diffs = set
            .questions
            .iter()
            .filter_map(|q| q.null.as_ref().map(|n| n.score_diff as f64));
        let (lo, hi) = diffs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), d| {
            (lo.min(d), hi.max(d))
        });
        if !(lo.is_finite() && hi.is_finite()) {
            ui.weak("This run saved no null scores: its threshold cannot be replayed.");
            return;
        }
        let mut t = self.threshold.unwrap_or(0.0);
        ui.horizontal_wrapped(|ui| {
            // A copy: the slider rounds what it shows to 3 decimals and
            // reports that as a change, which must not move an exact
            // threshold (the best one) it is only showing.
            let mut dragged = t;
            let slider = ui
                .add(
                    egui::Slider::new(&mut dragged, (lo - 1.0).min(0.0)..=(hi + 1.0).max(0.0))
                        .text("null threshold")
                        .fixed_decimals(3),
                )
                .on_hover_text(
                    "answer nothing when the null score beats the best span by more than this",
                );
            if slider.changed() && (dragged - t).abs() >= 5e-4 {
                t = dragged;
            }
            if let Some(best) = set.best_threshold {
                if ui
                    .button(format!("best F1 threshold {best:.3}"))
                    .on_hover_text("the threshold the run's evaluation found best for F1")
                    .clicked()
                {
                    t = best;
                }
            }
            // The set shown is the one replayed at its own threshold.
            ui.label(format!(
                "at {:.3}: EM {:.2} · F1 {:.2}",
                set.null_threshold.unwrap_or(t),
                set.exact_match,
                set.f1
            ));
        });
        self.set_threshold(t);
    }

    fn prediction_filters(
        &mut self,
        ui: &mut egui::Ui,
        cx: &mut AppContext<'_>,
        set: &PredictionSet,
        id: &str,
    ) {
        let others: Vec<(String, String)> = cx
            .runs
            .views
            .iter()
            .filter(|v| v.entry.id != id && v.entry.is_scored())
            .map(|v| (v.entry.id.clone(), v.label()))
            .collect();
        let f = &mut self.filter;
        if let Some((by, bucket)) = &f.bucket {
            let mut clear = false;
            ui.horizontal(|ui| {
                ui.label(format!("Only {}: {bucket}", by.name()))
                    .on_hover_text("opened from the Analysis view");
                clear = ui.small_button("show all questions").clicked();
            });
            if clear {
                f.bucket = None;
            }
        }
        ui.horizontal_wrapped(|ui| {
            for (c, label) in [
                (Category::All, "All"),
                (Category::Correct, "Correct"),
                (Category::Partial, "Partial"),
                (Category::Wrong, "Wrong"),
                (Category::Flipped, "Flipped"),
            ] {
                ui.selectable_value(&mut f.category, c, label);
            }
            if set.null_threshold.is_some() {
                ui.separator();
                for (c, label, hint) in [
                    (
                        Category::Answerable,
                        "Answerable",
                        "questions with an answer",
                    ),
                    (
                        Category::Unanswerable,
                        "Unanswerable",
                        "questions without one",
                    ),
                    (
                        Category::FalseNull,
                        "False null",
                        "answered nothing where there is an answer",
                    ),
                    (
                        Category::FalseAnswer,
                        "False answer",
                        "answered where there is no answer",
                    ),
                ] {
                    ui.selectable_value(&mut f.category, c, label)
                        .on_hover_text(hint);
                }
            }
            ui.separator();
            let title = f
                .title
                .and_then(|t| set.titles.get(t))
                .map_or("all articles", |t| t.as_str());
            egui::ComboBox::from_id_salt("article")
                .selected_text(title)
                .height(400.0)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut f.title, None, "all articles");
                    for (i, t) in set.titles.iter().enumerate() {
                        ui.selectable_value(&mut f.title, Some(i), t);
                    }
                });
            ui.add(
                egui::TextEdit::singleline(&mut f.search)
                    .hint_text("search questions and answers")
                    .desired_width(200.0),
            );
            egui::ComboBox::from_id_salt("sort")
                .selected_text(match f.sort {
                    Sort::FileOrder => "file order",
                    Sort::F1Ascending => "F1 ascending",
                    Sort::F1Descending => "F1 descending",
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut f.sort, Sort::FileOrder, "file order");
                    ui.selectable_value(
                        &mut f.sort,
                        Sort::F1Ascending,
                        "F1 ascending (worst first)",
                    );
                    ui.selectable_value(
                        &mut f.sort,
                        Sort::F1Descending,
                        "F1 descending (best first)",
                    );
                });
            ui.separator();
            let current = self.compare_with.clone();
            let text = current
                .as_ref()
                .and_then(|c| others.iter().find(|(i, _)| i == c))
                .map_or("compare with…".to_string(), |(_, l)| format!("vs {l}"));
            egui::ComboBox::from_id_salt("compare")
                .selected_text(text)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.compare_with, None, "no comparison");
                    for (other, label) in &others {
                        ui.selectable_value(&mut self.compare_with, Some(other.clone()), label);
                    }
                });
        });
        self.update_flips(cx.runs, id);
        if self.flips_loading.is_some() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("comparing…");
            });
        }
        if let Some(((_, other), result)) = &self.flips {
            match result {
                Ok(c) => {
                    let gained = c.flips.values().filter(|f| f.now_right).count();
                    ui.label(format!(
                        "vs {other}: {gained} questions right here and wrong there, {} the other way",
                        c.flips.len() - gained
                    ));
                    // Here B is the compared run: its ΔF1 is F1(there) − F1(here).
                    ui.weak(format!("{other} against this run: {}", c.verdict));
                }
                Err(e) => {
                    ui.colored_label(ui.visuals().error_fg_color, e);
                }
            }
        }
    }

    /// Keeps the flips for (this run, compared run), computing them on a
    /// worker thread when the pair changes.
    fn update_flips(&mut self, runs: &Runs, id: &str) {
        let p = &mut *self;
        let want = p.compare_with.clone().map(|other| (id.to_string(), other));
        if let Some((pair, rx)) = &p.flips_loading {
            if let Ok(result) = rx.try_recv() {
                p.flips = Some((pair.clone(), result));
                p.flips_loading = None;
                p.shown_for = None;
            }
        }
        let have = p.flips.as_ref().map(|(pair, _)| pair.clone());
        let loading = p.flips_loading.as_ref().map(|(pair, _)| pair.clone());
        if want == have || (want.is_some() && want == loading) {
            return;
        }
        p.shown_for = None;
        p.flips = None;
        p.flips_loading = None;
        let Some(pair) = want else {
            return;
        };
        let dirs = (
            runs.get(&pair.0).map(|v| v.entry.dir.clone()),
            runs.get(&pair.1).map(|v| v.entry.dir.clone()),
        );
        let (tx, rx) = bounded(1);
        let other = pair.1.clone();
        std::thread::spawn(move || {
            let result = match dirs {
                (Some(a), Some(b)) => diff_runs(&a, &b, Default::default())
                    .map_err(|e| format!("{e:#}"))
                    .map(|d| {
                        let verdict = match (d.tests, d.untested) {
                            (Some(t), _) => t.verdict,
                            (None, why) => why.unwrap_or_default(),
                        };
                        let mut flips = HashMap::new();
                        for (list, now_right) in
                            [(d.wrong_to_right, false), (d.right_to_wrong, true)]
                        {
                            for f in list {
                                let info = FlipInfo {
                                    now_right,
                                    other_answer: f.answer_b,
                                    other_f1: f.f1_b,
                                };
                                flips.insert(f.id, info);
                            }
                        }
                        Comparison { flips, verdict }
                    }),
                _ => Err(format!("run {other} is no longer in the store")),
            };
            let _ = tx.send(result);
        });
        p.flips_loading = Some((pair, rx));
    }

    fn question_list(
        &mut self,
        ui: &mut egui::Ui,
        set: &PredictionSet,
        shown: &[usize],
        height: f32,
    ) {
        let row_height = ui.text_style_height(&egui::TextStyle::Body) + 6.0;
        egui::ScrollArea::vertical()
            .id_salt("questions")
            .max_height(height)
            .auto_shrink([false, false])
            .show_rows(ui, row_height, shown.len(), |ui, range| {
                for &i in &shown[range] {
                    let q = &set.questions[i];
                    let mark = match category_of(q) {
                        Category::Correct => ("EM", Color32::from_rgb(60, 170, 80)),
                        Category::Partial => ("~", Color32::from_rgb(220, 170, 40)),
                        _ => ("x", Color32::from_rgb(220, 70, 70)),
                    };
                    ui.horizontal(|ui| {
                        ui.colored_label(mark.1, mark.0);
                        ui.monospace(format!("{:5.1}", q.f1 * 100.0));
                        let text = format!("{}   |   {}", q.question, q.predicted);
                        let selected = self.selected == Some(i);
                        if ui.selectable_label(selected, text).clicked() {
                            self.selected = Some(i);
                        }
                    });
                }
            });
    }

    fn question_detail(&self, ui: &mut egui::Ui, set: &PredictionSet, q: &Question) {
        let context = &set.contexts[q.context];
        ui.horizontal(|ui| {
            ui.weak(&set.titles[q.title]);
            ui.monospace(&q.id);
        });
        ui.heading(&q.question);
        egui::Grid::new("answer").num_columns(2).show(ui, |ui| {
            ui.label("Predicted");
            if q.predicted.is_empty() && q.null.is_some() {
                ui.strong("(no answer)");
            } else {
                ui.label(
                    egui::RichText::new(&q.predicted)
                        .background_color(PREDICTED)
                        .color(Color32::BLACK),
                );
            }
            ui.end_row();
            ui.label("Gold");
            if q.impossible {
                ui.strong("unanswerable");
            } else {
                let golds: Vec<&str> = q.golds.iter().map(|(g, _)| g.as_str()).collect();
                ui.label(
                    egui::RichText::new(golds.join("  |  "))
                        .background_color(GOLD)
                        .color(Color32::BLACK),
                );
            }
            ui.end_row();
            if let Some(null) = &q.null {
                ui.label("Null vs best span");
                ui.monospace(format!(
                    "null {:.3} - span {:.3} (\"{}\") = {:+.3}",
                    null.null_score, null.best_non_null_score, null.best_non_null, null.score_diff
                ))
                .on_hover_text("above the threshold, the answer is nothing");
                ui.end_row();
            }
            ui.label("EM / F1");
            ui.monospace(format!("{:.0} / {:.1}", q.exact_match, q.f1 * 100.0));
            ui.end_row();
            if let Some(flip) = self.flip(&q.id) {
                ui.label("Other run");
                ui.label(format!(
                    "{} \"{}\" (F1 {:.1})",
                    if flip.now_right {
                        "wrong there:"
                    } else {
                        "right there:"
                    },
                    flip.other_answer,
                    flip.other_f1 * 100.0
                ));
                ui.end_row();
            }
        });
        ui.add_space(6.0);
        let spans: Vec<(usize, usize)> = q
            .golds
            .iter()
            .map(|(g, s)| (*s, s + g.chars().count()))
            .collect();
        let job = highlighted(context, &spans, q.predicted_span(context), ui);
        ui.label(job);
        ui.add_space(6.0);
        if !q.nbest.is_empty() {
            ui.strong("Candidates");
            egui::Grid::new("nbest").striped(true).show(ui, |ui| {
                for c in &q.nbest {
                    ui.monospace(format!("{:8.3}", c.score));
                    ui.label(&c.text);
                    ui.weak(format!("{}..{}", c.start_char, c.end_char));
                    ui.end_row();
                }
            });
        }
    }
}
