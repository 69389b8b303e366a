//! The runs sidebar: every run in the store with its status, model, scores and
//! age; selection, filtering, labels, resume and delete.

use super::context::{AppContext, Request, View};
use super::jobs::JobState;
use super::runs::RunView;
use super::widgets::{age, status_color};
use squadlab_core::store::{relabel_run, remove_run, Relabel, RunStatus, Shown};
use squadlab_core::train::Control;

/// The runs sidebar's own state; the runs and the selection are the app's.
#[derive(Default)]
pub struct RunsSidebar {
    /// The run whose labels are being edited, and the edits.
    editing: Option<String>,
    name: String,
    tags: String,
    notes: String,
    /// A run waiting for delete confirmation.
    confirm_delete: Option<String>,
    /// Each run row's height when last drawn: rows off screen only take
    /// their space, so a store of hundreds of runs lists quickly.
    row_heights: std::collections::HashMap<String, f32>,
}

pub fn filter_id() -> egui::Id {
    egui::Id::unique("runs-filter")
}

/// Whether a run matches the filter: every word in its name, id, model, tags or status.
fn matches(view: &RunView, filter: &str) -> bool {
    let record = view.entry.record.as_ref();
    let haystack = format!(
        "{} {} {} {} {}",
        view.entry.id,
        view.entry.name(),
        record.map(|r| r.model()).unwrap_or_default(),
        record.map(|r| r.tags.join(" ")).unwrap_or_default(),
        view.entry.shown.as_str()
    )
    .to_lowercase();
    filter
        .to_lowercase()
        .split_whitespace()
        .all(|word| haystack.contains(word.trim_start_matches('#')))
}

impl View for RunsSidebar {
    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut AppContext<'_>) {
        ui.horizontal(|ui| {
            ui.strong(format!("Runs ({})", cx.runs.views.len()));
            if ui
                .small_button("Refresh")
                .on_hover_text("Re-read the store (Ctrl+R)")
                .clicked()
            {
                cx.request(Request::RereadStore);
            }
        });
        ui.add(
            egui::TextEdit::singleline(&mut cx.state.filter)
                .id(filter_id())
                .hint_text("filter: text or tag (Ctrl+F)"),
        );
        if let Some(e) = &cx.runs.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        let list_height = (ui.available_height() * 0.55).max(120.0);
        egui::ScrollArea::vertical()
            .id_salt("runs-list")
            .max_height(list_height)
            .auto_shrink([false, true])
            .show(ui, |ui| self.run_list(ui, cx));
        ui.separator();
        egui::ScrollArea::vertical()
            .id_salt("run-details")
            .show(ui, |ui| self.run_details(ui, cx));
        self.delete_dialog(ui.ctx(), cx);
    }
}

impl RunsSidebar {
    fn run_list(&mut self, ui: &mut egui::Ui, cx: &mut AppContext<'_>) {
        let mut clicked = None;
        let heights = &mut self.row_heights;
        for view in cx.runs.views.iter().rev() {
            if !matches(view, &cx.state.filter) {
                continue;
            }
            if let Some(&h) = heights.get(&view.entry.id) {
                let size = egui::vec2(ui.available_width(), h);
                if !ui.is_rect_visible(egui::Rect::from_min_size(ui.cursor().min, size)) {
                    ui.allocate_space(size);
                    continue;
                }
            }
            let selected = cx.state.selected.contains(&view.entry.id);
            let response = ui
                .push_id(&view.entry.id, |ui| run_row(ui, view, selected))
                .inner;
            heights.insert(view.entry.id.clone(), response.rect.height());
            if response.clicked() {
                clicked = Some((
                    view.entry.id.clone(),
                    ui.input(|i| i.modifiers.command || i.modifiers.shift),
                ));
            }
        }
        if let Some((id, add)) = clicked {
            cx.select(id, add);
        }
    }

    fn run_details(&mut self, ui: &mut egui::Ui, cx: &mut AppContext<'_>) {
        let Some(id) = cx.primary().map(str::to_string) else {
            ui.weak("Select a run; Ctrl+click adds runs to compare.");
            return;
        };
        let Some(view) = cx.runs.get(&id) else {
            ui.weak(format!("{id} is no longer in the store"));
            return;
        };
        ui.strong(view.label());
        ui.monospace(&view.entry.id);
        let shown = view.entry.shown;
        ui.colored_label(status_color(shown), shown.as_str());
        for problem in &view.entry.problems {
            ui.colored_label(ui.visuals().warn_fg_color, problem);
        }
        if let Some(detail) = view
            .entry
            .record
            .as_ref()
            .and_then(|r| r.status_detail.as_ref())
        {
            ui.label(detail);
        }
        let job = cx.jobs.get(&id);
        if let Some(job) = job {
            if !matches!(job.state, JobState::Ended) {
                ui.label(&job.status);
            }
            if let Some(e) = &job.error {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
        }
        let Some(record) = view.entry.record.clone() else {
            if ui.button("Delete…").clicked() {
                self.confirm_delete = Some(id);
            }
            return;
        };
        let ours = job.is_some_and(|j| !matches!(j.state, JobState::Ended));
        let training = job.is_some_and(|j| matches!(j.state, JobState::Running));
        let paused = job.is_some_and(|j| j.paused);
        let resumable = matches!(
            shown,
            Shown::Interrupted
                | Shown::Is(RunStatus::Cancelled | RunStatus::Failed | RunStatus::Diverged)
        ) && record.config.is_some();
        let active = view.is_active();
        ui.horizontal_wrapped(|ui| {
            if training {
                let label = if paused { "Resume" } else { "Pause" };
                if ui.button(label).clicked() {
                    let c = if paused {
                        Control::Resume
                    } else {
                        Control::Pause
                    };
                    cx.jobs.control(&id, c);
                }
            }
            if ours
                && ui
                    .button("Cancel")
                    .on_hover_text("Stop at the next step with a checkpoint")
                    .clicked()
            {
                cx.jobs.control(&id, Control::Cancel);
            }
            if resumable && ui.button("Resume run").clicked() {
                self.resume_run(cx, &id);
            }
            if let Some(config) = &record.config {
                if ui
                    .button("Clone config")
                    .on_hover_text("A new run from this run's config")
                    .clicked()
                {
                    cx.request(Request::NewRunFrom {
                        config: Box::new(config.clone()),
                        origin: format!("run {id}"),
                    });
                }
            }
            if !active && ui.button("Delete…").clicked() {
                self.confirm_delete = Some(id.clone());
            }
        });
        self.label_editor(ui, cx, &id, &record);
    }

    fn label_editor(
        &mut self,
        ui: &mut egui::Ui,
        cx: &mut AppContext<'_>,
        id: &str,
        record: &squadlab_core::store::RunRecord,
    ) {
        let s = &mut *self;
        if s.editing.as_deref() != Some(id) {
            s.editing = Some(id.to_string());
            s.name = record.name.clone();
            s.tags = record.tags.join(", ");
            s.notes = record.notes.clone();
        }
        egui::Grid::new("labels").num_columns(2).show(ui, |ui| {
            ui.label("Name");
            ui.text_edit_singleline(&mut s.name);
            ui.end_row();
            ui.label("Tags");
            ui.add(egui::TextEdit::singleline(&mut s.tags).hint_text("comma, separated"));
            ui.end_row();
        });
        ui.label("Notes");
        ui.add(egui::TextEdit::multiline(&mut s.notes).desired_rows(3));
        let tags: Vec<String> = s
            .tags
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        let changed = s.name != record.name || tags != record.tags || s.notes != record.notes;
        if ui
            .add_enabled(changed, egui::Button::new("Save labels"))
            .clicked()
        {
            let edit = Relabel {
                name: Some(s.name.clone()),
                add_tags: tags.clone(),
                remove_tags: record
                    .tags
                    .iter()
                    .filter(|t| !tags.contains(t))
                    .cloned()
                    .collect(),
                notes: Some(s.notes.clone()),
            };
            let dir = cx.runs.get(id).map(|v| v.entry.dir.clone());
            match dir.map(|d| relabel_run(&d, &edit)) {
                Some(Ok(_)) => cx.runs.refresh(&cx.state.selected, true),
                Some(Err(e)) => cx.error(format!("cannot save the labels of {id}: {e:#}")),
                None => {}
            }
        }
        ui.collapsing("Record", |ui| {
            if let Some(c) = &record.config {
                ui.monospace(c.to_ron());
            }
        });
    }

    fn resume_run(&mut self, cx: &mut AppContext<'_>, id: &str) {
        let Some(dir) = cx.runs.get(id).map(|v| v.entry.dir.clone()) else {
            return;
        };
        let result = squadlab_core::store::plan_resume(&dir).and_then(|plan| {
            let threads = Some(cx.threads);
            cx.jobs
                .submit(plan.dir, plan.record, plan.config, plan.checkpoint, threads)
        });
        match result {
            Ok(()) => cx.notify(format!("resuming {id}")),
            Err(e) => cx.error(format!("cannot resume {id}: {e:#}")),
        }
    }

    fn delete_dialog(&mut self, ctx: &egui::Context, cx: &mut AppContext<'_>) {
        let Some(id) = self.confirm_delete.clone() else {
            return;
        };
        let mut decision = None;
        egui::Modal::new(egui::Id::unique("confirm-delete")).show(ctx, |ui| {
            ui.heading(format!("Delete run {id}?"));
            ui.label("Its folder, checkpoints, model and predictions are removed from disk.");
            ui.horizontal(|ui| {
                if ui.button("Delete").clicked() {
                    decision = Some(true);
                }
                if ui.button("Keep").clicked() {
                    decision = Some(false);
                }
            });
        });
        match decision {
            Some(true) => {
                self.confirm_delete = None;
                let dir = cx.runs.get(&id).map(|v| v.entry.dir.clone());
                match dir.map(|d| remove_run(&d)) {
                    Some(Err(e)) => cx.error(format!("cannot delete {id}: {e:#}")),
                    _ => {
                        cx.state.selected.retain(|s| *s != id);
                        cx.notify(format!("deleted run {id}"));
                        cx.runs.refresh(&cx.state.selected, true);
                    }
                }
            }
            Some(false) => self.confirm_delete = None,
            None => {}
        }
    }
}

/// One run's row: badge, name, model, scores and age.
fn run_row(ui: &mut egui::Ui, view: &RunView, selected: bool) -> egui::Response {
    let shown = view.entry.shown;
    let record = view.entry.record.as_ref();
    let badge = match (shown, view.progress()) {
        (Shown::Is(RunStatus::Running), Some(p)) => format!("running {:.0}%", p * 100.0),
        _ => shown.as_str().to_string(),
    };
    let scores = view
        .scores()
        .map_or_else(String::new, |(em, f1)| format!("EM {em:.1} · F1 {f1:.1}"));
    let model = record.map(|r| r.model()).unwrap_or_default();
    let model = model.rsplit('/').next().unwrap_or("").to_string();
    let created = record.map(|r| age(&r.created)).unwrap_or_default();
    let frame = egui::Frame::group(ui.style()).fill(if selected {
        ui.visuals().selection.bg_fill
    } else {
        ui.visuals().faint_bg_color
    });
    let inner = frame.show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.horizontal(|ui| {
            ui.colored_label(status_color(shown), badge);
            ui.strong(view.label());
        });
        ui.horizontal(|ui| {
            ui.weak(model);
            ui.label(scores);
            ui.weak(created);
        });
        if let (Shown::Is(RunStatus::Running), Some(p)) = (shown, view.progress()) {
            ui.add(egui::ProgressBar::new(p).desired_height(4.0));
        }
        if let Some(r) = record.filter(|r| !r.tags.is_empty()) {
            ui.weak(
                r.tags
                    .iter()
                    .map(|t| format!("#{t}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
    });
    ui.interact(
        inner.response.rect,
        inner.response.id.with("row"),
        egui::Sense::click(),
    )
    .on_hover_text(&view.entry.id)
}
