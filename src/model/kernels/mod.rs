//! Fused CPU kernels with hand-written backward passes, as candle custom ops.
//!
//! candle builds BERT's LayerNorm, GELU, softmax and biased linears from
//! primitive ops: each allocates a full-size temporary and takes a memory pass,
//! forward and backward, and the attention scores (`b·h·s·s`) live in the graph
//! until the backward pass. These kernels do each layer piece in one or two
//! passes, and attention recomputes its scores in the backward pass instead of
//! storing them. They run for f32 on the CPU; other devices and dtypes keep the
//! primitive ops (`applies`).

mod attention;
mod gelu;
mod layer_norm;
mod linear;
mod math;
mod matmul;
mod storage;

pub use attention::{attention, AttentionDropout};
pub use gelu::gelu;
pub use layer_norm::layer_norm;
pub use linear::linear;

use candle_core::{DType, Tensor};

/// Whether the fused kernels handle these tensors: f32 on the CPU.
pub fn applies(tensors: &[&Tensor]) -> bool {
    tensors
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

/// Runs `f` compiled for AVX-512 (or AVX2 with FMA) when the CPU has it, so the
/// plain loops inside vectorise to the widest registers; elsewhere, as built.
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            // SAFETY: the CPU has the features the wrapper is compiled for.
            return unsafe { with_avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: as above.
            return unsafe { with_avx2(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
unsafe fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
