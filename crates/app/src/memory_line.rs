//! The New-run form's memory line: the planner's prediction for the form's
//! config against its device ("needs about X; cuda:0 has Y free"), and the
//! refusal of a CUDA run that cannot fit. The GPUs come from `nvidia-smi`,
//! never a CUDA context in the app's process.

use squadlab_core::config::RunConfig;
use squadlab_core::memory::gpus::{query_gpus, Gpu};
use squadlab_core::memory::{check, device_memory, model_config, Fit};
use squadlab_core::model::BertConfig;
use std::collections::HashMap;

/// What the line needs, each asked once: the GPU query is a process spawn,
/// a model's config a file read, and the form redraws every frame.
#[derive(Default)]
pub struct MemoryProbe {
    gpus: Option<Result<Vec<Gpu>, String>>,
    models: HashMap<String, Option<BertConfig>>,
}

impl MemoryProbe {
    /// Uses these GPUs instead of asking `nvidia-smi` (tests, and a refresh).
    pub fn set_gpus(&mut self, gpus: Result<Vec<Gpu>, String>) {
        self.gpus = Some(gpus);
    }

    /// The plan for `config`, or `None` when its model's config is not at
    /// hand without a download.
    pub fn fit(&mut self, config: &RunConfig) -> Option<Fit> {
        let model = self
            .models
            .entry(config.model.as_str().to_string())
            .or_insert_with(|| model_config(&config.model))
            .clone()?;
        let gpus = self.gpus.get_or_insert_with(query_gpus);
        Some(check(config, &model, &device_memory(config.device, gpus)))
    }
}

/// The line under the form.
pub fn show(ui: &mut egui::Ui, fit: Option<&Fit>) {
    match fit {
        Some(fit) if fit.refuse => {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("- memory: {}", fit.message),
            );
        }
        Some(fit) if fit.message.starts_with("warning:") => {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!("Memory: training {}", fit.message),
            );
        }
        Some(fit) => {
            ui.label(format!("Memory: training {}", fit.message))
                .on_hover_text(breakdown(fit));
        }
        None => {
            ui.weak("Memory: not planned (the model's config.json is not on this machine yet)");
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
