//! CUDA settings that cost nothing, applied to every CUDA device squadlab
//! creates (`select_device`), and the pool's peak for the memory check.
//! Without the `cuda` feature each is a no-op, so callers need no cfg.
//!
//! - **Event tracking off.** cudarc records a CUDA event on each use of each
//!   buffer, so a buffer shared by several streams is freed only once every
//!   stream is done with it: an extra driver call per kernel argument. squadlab
//!   runs one stream, on the one thread that created the device (the trainer
//!   refuses uploads from any other), so the events guard nothing.
//! - **The memory pool kept.** cudarc allocates stream-ordered
//!   (`cuMemAllocAsync`) from the device's default pool, whose release
//!   threshold is 0: each synchronisation (every loss read) hands the freed
//!   memory back to the driver, and the next step maps it again. A threshold
//!   of `u64::MAX` keeps it, as PyTorch's caching allocator does.
//! - **TF32** for f32 matrix products (`RunConfig::tf32`, on by default): the
//!   tensor cores with a 10-bit mantissa, as PyTorch's `allow_tf32`. bf16 and
//!   f16 products are unaffected. The CUDA-against-CPU check turns it off.

use anyhow::Result;
use candle_core::Device;

/// Applies the settings above to a freshly created device, before any tensor
/// lives on it (event tracking covers only buffers made after the switch).
pub fn tune(device: &Device) -> Result<()> {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(cuda) = device {
        use candle_core::cuda::cudarc::driver::{result, sys};
        // SAFETY: one stream, driven from one thread (see above and
        // train/handle.rs), so no buffer is ever used by a second stream.
        unsafe { cuda.disable_event_tracking() };
        let stream = cuda.cuda_stream();
        let context = stream.context();
        if context.has_async_alloc() {
            context.bind_to_thread()?;
            let mut threshold = u64::MAX;
            // SAFETY: the device is the context's own; the release threshold
            // attribute takes a u64.
            unsafe {
                let pool = result::device::get_default_mem_pool(context.cu_device())?;
                result::mem_pool::set_attribute(
                    pool,
                    sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                    &mut threshold as *mut u64 as *mut std::ffi::c_void,
                )?;
            }
        }
    }
    let _ = device;
    Ok(())
}

/// TF32 for f32 matrix products on CUDA (a process-wide switch in candle).
pub fn set_tf32(on: bool) {
    #[cfg(feature = "cuda")]
    candle_core::cuda::set_gemm_reduced_precision_f32(on);
    let _ = on;
}

/// The most memory the device's pool has held in use since the last
/// `reset_peak`, in bytes; `None` off CUDA or without stream-ordered
/// allocation.
pub fn pool_peak(device: &Device) -> Result<Option<u64>> {
    pool_attribute(device, PoolCounter::Peak)
}

/// Starts a new peak for `pool_peak`.
pub fn reset_peak(device: &Device) -> Result<()> {
    pool_attribute(device, PoolCounter::Reset).map(|_| ())
}

enum PoolCounter {
    Peak,
    Reset,
}

fn pool_attribute(device: &Device, counter: PoolCounter) -> Result<Option<u64>> {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(cuda) = device {
        use candle_core::cuda::cudarc::driver::{result, sys};
        let stream = cuda.cuda_stream();
        let context = stream.context();
        if !context.has_async_alloc() {
            return Ok(None);
        }
        context.bind_to_thread()?;
        stream.synchronize()?;
        let attribute = sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH;
        let mut value = 0u64;
        // SAFETY: the pool is the device's own; USED_MEM_HIGH is a u64, and
        // the driver accepts only 0 when it is set (a reset).
        unsafe {
            let pool = result::device::get_default_mem_pool(context.cu_device())?;
            let ptr = &mut value as *mut u64 as *mut std::ffi::c_void;
            match counter {
                PoolCounter::Peak => result::mem_pool::get_attribute(pool, attribute, ptr)?,
                PoolCounter::Reset => result::mem_pool::set_attribute(pool, attribute, ptr)?,
            }
        }
        return Ok(Some(value));
    }
    let _ = (device, counter);
    Ok(None)
}
