//! Borrowing a contiguous f32 slice out of candle's storage.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, Layout, Result, Storage, Tensor};

/// The contiguous f32 values `layout` views in `storage`.
pub fn slice<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        bail!("{op}: expects f32, got {:?}", storage.dtype())
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!(
            "{op}: expects a contiguous tensor, got strides {:?}",
            layout.stride()
        ),
    }
}

/// Calls `f` with the values of `t` (made contiguous first), which must be f32 on the CPU.
pub fn with_values<R>(t: &Tensor, op: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => f(slice(cpu, layout, op)?),
        _ => bail!("{op}: expects a CPU tensor"),
    }
}

/// A raw pointer that may cross threads: each task writes a disjoint region.
#[derive(Clone, Copy)]
pub struct SendPtr(pub *mut f32);
// SAFETY: users write only to regions no other task touches.
unsafe impl Send for SendPtr {}
// SAFETY: as for Send: tasks share the pointer, never a region behind it.
unsafe impl Sync for SendPtr {}
