//! Hugging Face's `get_linear_schedule_with_warmup`: a linear rise over the
//! warmup steps, then a linear decay to 0 at the last step.

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearSchedule {
    pub base_lr: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
}

impl LinearSchedule {
    /// The learning rate of optimizer step `step` (0-based: the first update
    /// uses `lr(0)`, which is 0 when there is warmup, as in Hugging Face).
    pub fn lr(&self, step: u64) -> f64 {
        let (step, warmup, total) = (
            step as f64,
            self.warmup_steps as f64,
            self.total_steps as f64,
        );
        let factor = if step < warmup {
            step / warmup.max(1.0)
        } else {
            ((total - step) / (total - warmup).max(1.0)).max(0.0)
        };
        self.base_lr * factor
    }
}

#[cfg(test)]
mod tests {
    use super::LinearSchedule;

    #[test]
    fn rises_over_warmup_then_decays_to_zero() {
        // The CPU protocol: 161 steps, ceil(10%) = 17 of them warmup.
        let s = LinearSchedule {
            base_lr: 1e-4,
            warmup_steps: 17,
            total_steps: 161,
        };
        assert_eq!(s.lr(0), 0.0);
        assert!((s.lr(1) - 1e-4 / 17.0).abs() < 1e-12);
        assert!((s.lr(16) - 1e-4 * 16.0 / 17.0).abs() < 1e-12);
        assert!((s.lr(17) - 1e-4).abs() < 1e-12);
        assert!((s.lr(160) - 1e-4 / 144.0).abs() < 1e-12);
        assert_eq!(s.lr(161), 0.0);
        let flat = LinearSchedule {
            warmup_steps: 0,
            ..s
        };
        assert!((flat.lr(0) - 1e-4).abs() < 1e-12);
    }
}
