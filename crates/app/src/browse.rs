//! A small file and folder chooser drawn with egui: it needs no desktop portal
//! or native toolkit, so it works the same on a workstation, over X
//! forwarding, and under Xvfb.

use std::path::{Path, PathBuf};

/// What the chosen path is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Store,
    ModelFolder,
    TrainFile,
    ValidationFile,
    ConfigFile,
    SweepFile,
}

pub struct Browser {
    purpose: Purpose,
    dir: PathBuf,
    typed: String,
    want_file: bool,
    error: Option<String>,
    /// The folder's entries, read once per folder rather than every frame.
    listing: Option<(PathBuf, Vec<(bool, PathBuf)>)>,
}

impl Browser {
    pub fn folder(purpose: Purpose, start: &Path) -> Self {
        Self::new(purpose, start, false)
    }

    pub fn file(purpose: Purpose, start: &Path) -> Self {
        Self::new(purpose, start, true)
    }

    fn new(purpose: Purpose, start: &Path, want_file: bool) -> Self {
        let mut dir = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
        while !dir.is_dir() {
            match dir.parent() {
                Some(p) => dir = p.to_path_buf(),
                None => {
                    dir = PathBuf::from(".");
                    break;
                }
            }
        }
        Self {
            purpose,
            typed: dir.display().to_string(),
            dir,
            want_file,
            error: None,
            listing: None,
        }
    }

    /// Draws the chooser; returns the chosen path, or `Err(())` when dismissed.
    fn show(&mut self, ui: &mut egui::Ui) -> Option<Result<PathBuf, ()>> {
        let mut chosen = None;
        ui.horizontal(|ui| {
            if ui.button("Up").clicked() {
                if let Some(p) = self.dir.parent() {
                    self.dir = p.to_path_buf();
                    self.typed = self.dir.display().to_string();
                }
            }
            let edit = ui.add(egui::TextEdit::singleline(&mut self.typed).desired_width(420.0));
            if edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                let typed = PathBuf::from(&self.typed);
                if typed.is_dir() {
                    self.dir = typed;
                } else if self.want_file && typed.is_file() {
                    chosen = Some(Ok(typed));
                } else {
                    self.error = Some(format!("{} does not exist", typed.display()));
                }
            }
        });
        if self
            .listing
            .as_ref()
            .is_none_or(|(dir, _)| *dir != self.dir)
        {
            let mut entries: Vec<(bool, PathBuf)> = std::fs::read_dir(&self.dir)
                .map(|rd| {
                    rd.flatten()
                        .map(|e| (e.path().is_dir(), e.path()))
                        .filter(|(is_dir, _)| *is_dir || self.want_file)
                        .collect()
                })
                .unwrap_or_default();
            entries.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            self.listing = Some((self.dir.clone(), entries));
        }
        let entries = self
            .listing
            .as_ref()
            .map(|(_, e)| e.clone())
            .unwrap_or_default();
        egui::ScrollArea::vertical()
            .max_height(320.0)
            .show(ui, |ui| {
                for (is_dir, path) in entries {
                    let name = path
                        .file_name()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                    let label = if is_dir { format!("{name}/") } else { name };
                    let response = ui.selectable_label(false, label);
                    if response.clicked() {
                        if is_dir {
                            self.dir = path.clone();
                            self.typed = path.display().to_string();
                        } else {
                            chosen = Some(Ok(path));
                        }
                    }
                }
            });
        if let Some(e) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        ui.horizontal(|ui| {
            if !self.want_file && ui.button("Choose this folder").clicked() {
                chosen = Some(Ok(self.dir.clone()));
            }
            if ui.button("Cancel").clicked() {
                chosen = Some(Err(()));
            }
        });
        chosen
    }
}

impl Browser {
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// Draws the chooser's window: None while open, then the chosen path,
    /// or None inside when it was dismissed.
    pub fn window(&mut self, ctx: &egui::Context) -> Option<Option<PathBuf>> {
        let title = match self.purpose {
            Purpose::Store => "Open a run store",
            Purpose::ModelFolder => "Choose a model folder",
            Purpose::TrainFile => "Choose the training file",
            Purpose::ValidationFile => "Choose the validation file",
            Purpose::ConfigFile => "Open a run config",
            Purpose::SweepFile => "Open a sweep file",
        };
        let mut open = true;
        let mut outcome = None;
        egui::Window::new(title)
            .open(&mut open)
            .collapsible(false)
            .default_width(520.0)
            .show(ctx, |ui| outcome = self.show(ui));
        if !open {
            outcome = Some(Err(()));
        }
        outcome.map(Result::ok)
    }
}
