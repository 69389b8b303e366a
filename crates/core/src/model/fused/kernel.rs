//! The fused kernels by name, the set a run trusts, and the fault switch
//! that breaks one of them for tests of the fallback.

use crate::faults;
use serde::Serialize;

/// One fused op family: its forward and backward kernels go together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Kernel {
    Softmax,
    LayerNorm,
    Bias,
    Gelu,
    ColumnSums,
    Embedding,
    QaLoss,
    AdamW,
    Norms,
}

impl Kernel {
    pub const ALL: [Kernel; 9] = [
        Kernel::Softmax,
        Kernel::LayerNorm,
        Kernel::Bias,
        Kernel::Gelu,
        Kernel::ColumnSums,
        Kernel::Embedding,
        Kernel::QaLoss,
        Kernel::AdamW,
        Kernel::Norms,
    ];

    /// The name `run.ron`, `doctor --kernels` and the fault switch use.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Softmax => "softmax",
            Kernel::LayerNorm => "layer-norm",
            Kernel::Bias => "bias",
            Kernel::Gelu => "gelu",
            Kernel::ColumnSums => "column-sums",
            Kernel::Embedding => "embedding",
            Kernel::QaLoss => "qa-loss",
            Kernel::AdamW => "adamw",
            Kernel::Norms => "norms",
        }
    }

    /// What it fuses, for tables.
    pub fn what(self) -> &'static str {
        match self {
            Kernel::Softmax => "scale + mask + softmax + dropout",
            Kernel::LayerNorm => "dropout + residual + LayerNorm (+ dropout)",
            Kernel::Bias => "bias rows (the GEMM epilogue)",
            Kernel::Gelu => "GELU (erf)",
            Kernel::ColumnSums => "bias gradient (column sums)",
            Kernel::Embedding => "embedding gather / scatter-add",
            Kernel::QaLoss => "QA loss and its gradient",
            Kernel::AdamW => "AdamW with the half-precision copy",
            Kernel::Norms => "squared norms for clipping",
        }
    }

    pub fn from_name(name: &str) -> Option<Kernel> {
        Kernel::ALL.into_iter().find(|k| k.name() == name)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// Whether `SQUADLAB_FAULT_BROKEN_KERNEL` names this kernel.
    pub fn is_broken_on_purpose(self) -> bool {
        faults::broken_kernel() == Some(self.name())
    }

    /// The fault switch's damage: the first output value off by one, which
    /// the self-check sees and a run's losses show.
    pub fn sabotage(self, out: &mut [f32]) {
        if self.is_broken_on_purpose() {
            if let Some(first) = out.first_mut() {
                *first += 1.0;
            }
        }
    }
}

/// The kernels an engine runs fused; the others fall back to candle's
/// generic ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelSet(u16);

impl KernelSet {
    pub fn all() -> Self {
        Self(Kernel::ALL.iter().map(|k| k.bit()).sum())
    }

    pub fn none() -> Self {
        Self(0)
    }

    pub fn has(self, k: Kernel) -> bool {
        self.0 & k.bit() != 0
    }

    /// The kernels in both sets.
    pub fn and(self, other: KernelSet) -> Self {
        Self(self.0 & other.0)
    }

    pub fn without(self, k: Kernel) -> Self {
        Self(self.0 & !k.bit())
    }

    /// The names of the kernels in the set, in `Kernel::ALL`'s order.
    pub fn names(self) -> Vec<String> {
        Kernel::ALL
            .into_iter()
            .filter(|&k| self.has(k))
            .map(|k| k.name().to_string())
            .collect()
    }
}
