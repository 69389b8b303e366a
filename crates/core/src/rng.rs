//! The project's one random number generator, at the bottom of the layers:
//! the model draws dropout masks and head weights from it, the trainer saves
//! its state in every checkpoint, and significance tests and sweeps draw
//! from it too, all from a seed.

pub mod philox;

/// A small seeded generator (SplitMix64) for dropout masks and head init, so a
/// run's randomness comes from its seed alone and can be saved and resumed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeededRng {
    pub state: u64,
}

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Standard normal (Box–Muller).
    pub fn next_normal(&mut self) -> f64 {
        let u1 = ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let u2 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// Which generator draws a run's dropout masks, as its checkpoints and
/// `run.ron` record it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DropoutGenerator {
    /// The autograd graph's: SplitMix64 streams from the checkpointed
    /// `SeededRng` on the CPU, the device's own generator elsewhere. Every
    /// checkpoint from before the lean step (which records none) drew so.
    #[default]
    #[serde(rename = "seeded-rng")]
    SeededRng,
    /// The lean step's counter-based Philox 4×32-10 (`philox`), keyed by
    /// seed, micro-batch, site and element.
    #[serde(rename = "philox4x32-10")]
    Philox,
}

impl DropoutGenerator {
    pub fn name(self) -> &'static str {
        match self {
            DropoutGenerator::SeededRng => "seeded-rng",
            DropoutGenerator::Philox => philox::NAME,
        }
    }
}
