//! Closing the window while runs train: the user chooses between stopping them
//! with a checkpoint (resumable later) and waiting for them to end.

use super::app::{Closing, SquadlabApp};

impl SquadlabApp {
    pub(super) fn handle_close(&mut self, ctx: &egui::Context) {
        let requested = ctx.input(|i| i.viewport().close_requested());
        let active = self.jobs.active() > 0;
        if requested && active {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            if self.closing == Closing::No {
                self.closing = Closing::Asking;
            }
        }
        if matches!(self.closing, Closing::AfterCancel | Closing::AfterRuns) && !active {
            self.closing = Closing::No;
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }

    pub(super) fn close_dialog(&mut self, ctx: &egui::Context) {
        if self.closing == Closing::No {
            return;
        }
        let active = self.jobs.active();
        egui::Modal::new(egui::Id::unique("close-while-training")).show(ctx, |ui| {
            match self.closing {
                Closing::Asking => {
                    ui.heading(format!("{active} run(s) still training"));
                    ui.label("Nothing is lost either way: every step so far is in the run store.");
                    if ui
                        .button("Stop them with a checkpoint and close")
                        .on_hover_text("Each run saves a checkpoint at its next step; resume it later from the sidebar or with `squadlab resume`.")
                        .clicked()
                    {
                        self.jobs.cancel_all();
                        self.closing = Closing::AfterCancel;
                    }
                    if ui.button("Keep the app open until they end, then close").clicked() {
                        self.closing = Closing::AfterRuns;
                    }
                    if ui.button("Don't close").clicked() {
                        self.closing = Closing::No;
                    }
                }
                Closing::AfterCancel => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label(format!("Saving checkpoints: {active} run(s) stopping…"));
                    });
                    ui.weak("A run still preparing its data or evaluating stops when that ends.");
                    if ui
                        .button("Quit now")
                        .on_hover_text("Runs not yet stopped show as interrupted and resume from their last checkpoint.")
                        .clicked()
                    {
                        std::process::exit(0);
                    }
                }
                Closing::AfterRuns => {
                    ui.label(format!("The window closes when {active} run(s) end."));
                    if ui.button("Don't close").clicked() {
                        self.closing = Closing::No;
                    }
                }
                Closing::No => {}
            }
        });
    }
}
