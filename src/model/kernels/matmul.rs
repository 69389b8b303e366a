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
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
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
