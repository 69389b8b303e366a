//! A thin wrapper over the `gemm` crate (candle's own matmul engine) for
//! strided views, so kernels multiply in place without transposed copies.

use gemm::Parallelism;

/// A read-only `rows × cols` view: element (i, j) at `ptr + i·rs + j·cs`.
#[derive(Clone, Copy)]
pub struct View {
    pub ptr: *const f32,
    pub rs: isize,
    pub cs: isize,
}

impl View {
    pub fn row_major(data: &[f32], cols: usize) -> Self {
        Self {
            ptr: data.as_ptr(),
            rs: cols as isize,
            cs: 1,
        }
    }

    /// The transpose of this view (no copy).
    pub fn t(self) -> Self {
        Self {
            ptr: self.ptr,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// A writable view, laid out as `View`.
#[derive(Clone, Copy)]
pub struct ViewMut {
    pub ptr: *mut f32,
    pub rs: isize,
    pub cs: isize,
}

impl ViewMut {
    pub fn row_major(data: &mut [f32], cols: usize) -> Self {
        Self {
            ptr: data.as_mut_ptr(),
            rs: cols as isize,
            cs: 1,
        }
    }
}

/// The longest stretch of k one gemm call sums. gemm splits a longer k into
/// blocks sized from the L1 cache's geometry and the register tile (at least
/// 512), and rounds each block's sum into `dst` on its own, so the block size
/// shows in the bits: on one 48 KiB L1, AVX2 and AVX-512 gemm trained
/// MiniLM to different weights. Cutting k here first, into blocks gemm keeps
/// whole, makes them the same on every machine (tools/test-avx2.sh).
const K_BLOCK: usize = 512;

/// `dst (m×n) = [dst +] scale · lhs (m×k) · rhs (k×n)`, on `threads` threads
/// of the current rayon pool (1: this thread only).
///
/// # Safety
/// Each view must address valid memory for its shape, and `dst` must not
/// overlap the inputs or be written by anyone else meanwhile.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm(
    m: usize,
    n: usize,
    k: usize,
    dst: ViewMut,
    lhs: View,
    rhs: View,
    accumulate: bool,
    scale: f32,
    threads: usize,
) {
    if k > K_BLOCK {
        // Balanced as gemm balances its own blocks (1,000 = 500 + 500), so the
        // machines where gemm picks 512 get the bits they always had.
        let block = k.div_ceil(k.div_ceil(K_BLOCK));
        for start in (0..k).step_by(block) {
            let len = block.min(k - start);
            let at = start as isize;
            let lhs = View {
                ptr: lhs.ptr.wrapping_offset(at * lhs.cs),
                ..lhs
            };
            let rhs = View {
                ptr: rhs.ptr.wrapping_offset(at * rhs.rs),
                ..rhs
            };
            // SAFETY: columns `start..start + len` of lhs and rows of rhs lie
            // inside the views the caller vouched for; len is within K_BLOCK,
            // so this call multiplies at once.
            unsafe {
                gemm(
                    m,
                    n,
                    len,
                    dst,
                    lhs,
                    rhs,
                    accumulate || start > 0,
                    scale,
                    threads,
                )
            };
        }
        return;
    }
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: the caller vouched for the views (this function's contract);
    // gemm reads lhs and rhs and writes dst through their strides only.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.ptr,
            dst.cs,
            dst.rs,
            accumulate,
            lhs.ptr,
            lhs.cs,
            lhs.rs,
            rhs.ptr,
            rhs.cs,
            rhs.rs,
            1.0,
            scale,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// Threads for one big product: the current rayon pool's.
pub fn pool_threads() -> usize {
    rayon::current_num_threads()
}
