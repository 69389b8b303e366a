//! Fused CPU kernels with hand-written backward passes, as candle custom ops.
//!
//! candle builds BERT's LayerNorm, GELU, softmax and biased linears from
//! primitive ops: each allocates a full-size temporary and takes a memory pass,
//! forward and backward, and the attention scores (`b·h·s·s`) live in the graph
//! until the backward pass. These kernels do each layer piece in one or two
//! passes, and attention recomputes its scores in the backward pass instead of
//! storing them. They run for f32 on the CPU; other devices and dtypes keep the
//! primitive ops (`applies`).

pub(crate) mod attention;
pub mod cpu_level;
pub(crate) mod gelu;
pub(crate) mod layer_norm;
pub(crate) mod linear;
pub mod masks;
pub(crate) mod math;
pub(crate) mod matmul;
pub mod optimizer;
pub(crate) mod storage;

pub use attention::{attention, AttentionDropout};
pub use gelu::gelu;
pub use layer_norm::layer_norm;
pub use linear::linear;
pub use storage::slice as f32_slice;

use candle_core::{DType, Tensor};
use std::cell::Cell;

thread_local! {
    static GENERIC_GRAPH: Cell<bool> = const { Cell::new(false) };
}

/// Whether the fused kernels handle these tensors: f32 on the CPU, unless
/// this thread runs the generic graph.
pub fn applies(tensors: &[&Tensor]) -> bool {
    !generic_graph_active()
        && tensors
            .iter()
            .all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

/// True while a `GenericGraph` guard lives on this thread.
pub fn generic_graph_active() -> bool {
    GENERIC_GRAPH.with(Cell::get)
}

/// While it lives, this thread builds the device-generic graph: candle's
/// primitive ops, the device dropout and the tensor AdamW, as a CUDA build
/// runs them, with none of the fused CPU kernels. Per thread, because device
/// work stays on the thread that created the device, and so that tests on
/// other threads keep their own graph.
#[must_use = "the generic graph ends when the guard drops"]
pub struct GenericGraph {
    previous: bool,
}

pub fn generic_graph(on: bool) -> GenericGraph {
    let previous = GENERIC_GRAPH.with(|g| g.replace(on));
    GenericGraph { previous }
}

impl Drop for GenericGraph {
    fn drop(&mut self) {
        GENERIC_GRAPH.with(|g| g.set(self.previous));
    }
}

/// Defines `fn $name(args)` compiled three ways, for AVX-512, for AVX2 with
/// FMA, and for the build's baseline, and picks by what the CPU has at run
/// time, so the plain loops in the body vectorise to the widest registers.
/// (A closure handed to a `#[target_feature]` function is not reliably
/// inlined into it; a named `#[inline(always)]` body is.)
#[macro_export]
#[doc(hidden)]
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
            unsafe fn avx512($($arg: $ty),*) {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2($($arg: $ty),*) {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            {
                if $crate::model::kernels::has_avx512() {
                    // SAFETY: the CPU has the features `avx512` is compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if $crate::model::kernels::has_avx2() {
                    // SAFETY: as above, for `avx2`.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub use multiversion;

/// Whether the kernels take their AVX-512 path: the CPU has it and
/// `SQUADLAB_CPU_LEVEL` does not cap it (`cpu_level`).
#[cfg(target_arch = "x86_64")]
pub fn has_avx512() -> bool {
    cpu_level::active() >= cpu_level::CpuLevel::Avx512
}

/// Whether the kernels may take their AVX2 path, as `has_avx512`.
#[cfg(target_arch = "x86_64")]
pub fn has_avx2() -> bool {
    cpu_level::active() >= cpu_level::CpuLevel::Avx2
}

#[cfg(test)]
mod tests;
