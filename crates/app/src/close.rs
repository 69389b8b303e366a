//! Closing the window while runs train: the user chooses between stopping them
//! with a checkpoint (resumable later) and waiting for them to end.

use super::jobs::Jobs;

/// What closing the window does while runs train.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub enum Closing {
    #[default]
    No,
    Asking,
    /// Runs were asked to stop with a checkpoint; close when they have.
    AfterCancel,
    /// Close when the runs end by themselves.
    AfterRuns,
}

impl Closing {
    /// Holds a close request back while runs train, and closes once the
    /// runs it waits for have ended.
    pub fn handle(&mut self, ctx: &egui::Context, jobs: &Jobs) {
        let requested = ctx.input(|i| i.viewport().close_requested());
        let active = jobs.active() > 0;
        if requested && active {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            if *self == Closing::No {
                *self = Closing::Asking;
            }
        }
        if matches!(*self, Closing::AfterCancel | Closing::AfterRuns) && !active {
            *self = Closing::No;
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }

    /// The question to the user, while there is one.
    pub fn dialog(&mut self, ctx: &egui::Context, jobs: &mut Jobs) {
        if *self == Closing::No {
            return;
        }
        let active = jobs.active();
        egui::Modal::new(egui::Id::unique("close-while-training")).show(ctx, |ui| {
            match *self {
                Closing::Asking => {
                    ui.heading(format!("{active} run(s) still training"));
                    ui.label("Nothing is lost either way: every step so far is in the run store.");
                    if ui
                        .button("Stop them with a checkpoint and close")
                        .on_hover_text("Each run saves a checkpoint at its next step; resume it later from the sidebar or with `squadlab resume`.")
                        .clicked()
                    {
                        jobs.cancel_all();
                        *self = Closing::AfterCancel;
                    }
                    if ui.button("Keep the app open until they end, then close").clicked() {
                        *self = Closing::AfterRuns;
                    }
                    if ui.button("Don't close").clicked() {
                        *self = Closing::No;
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
                        *self = Closing::No;
                    }
                }
                Closing::No => {}
            }
        });
    }
}
