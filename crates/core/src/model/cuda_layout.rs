//! CUDA's rule for matrix-product operands, checked on every device. candle's
//! CUDA matmul (`gemm_config` in candle-core 0.11's cuda_backend) takes an
//! operand only when its last two dims are contiguous or simply transposed,
//! and its batch dims collapse to one stride; otherwise it fails with
//! `MatMulNonContiguous`. The CPU gemm takes more (a row stride other than
//! the row length, for one), so a graph that trains on the CPU can still fail
//! on the GPU: `matmul` here refuses such a product on every device, forward
//! and backward. It costs a few integer comparisons per product.
//!
//! The backward products are `grad · rhsᵀ` and `lhsᵀ · grad` (backprop.rs,
//! `Op::Matmul`), and candle accumulates every gradient into a fresh tensor
//! (`or_insert` then `add`), so `grad` is contiguous: checking the forward
//! operands and their transposes covers the backward pass.

use candle_core::{Layout, Result, Tensor};

/// `a · b`, refused as CUDA would refuse it.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    check(a.layout(), b.layout(), "forward")?;
    // The backward products' operands: a contiguous gradient beside bᵀ, and aᵀ.
    let grad = product_layout(a.layout(), b.layout());
    check(&grad, &b.layout().transpose_last()?, "backward (grad · bᵀ)")?;
    check(&a.layout().transpose_last()?, &grad, "backward (aᵀ · grad)")?;
    a.matmul(b)
}

trait TransposeLast {
    fn transpose_last(&self) -> Result<Layout>;
}

impl TransposeLast for Layout {
    fn transpose_last(&self) -> Result<Layout> {
        let n = self.dims().len();
        self.transpose(n - 2, n - 1)
    }
}

/// A contiguous layout of the product's shape (the gradient of `a · b`).
fn product_layout(a: &Layout, b: &Layout) -> Layout {
    let mut dims = a.dims().to_vec();
    let n = dims.len();
    dims[n - 1] = b.dims()[n - 1];
    Layout::contiguous(dims)
}

/// `gemm_config`'s predicate on (lhs `[…, m, k]`, rhs `[…, k, n]`).
pub fn check(lhs: &Layout, rhs: &Layout, pass: &str) -> Result<()> {
    let (ld, rd) = (lhs.dims(), rhs.dims());
    let r = ld.len();
    if r < 2 || rd.len() != r {
        return Ok(()); // candle's own shape check reports these.
    }
    let (m, k, n) = (ld[r - 2], ld[r - 1], rd[r - 1]);
    let (ls, rs) = (lhs.stride(), rhs.stride());
    let (l1, l2, r1, r2) = (ls[r - 1], ls[r - 2], rs[r - 1], rs[r - 2]);
    let rhs_ok = ((r1 == 1 || n == 1) && (r2 == n || k == 1))
        || ((r1 == k || n == 1) && (r2 == 1 || k == 1));
    let lhs_ok = ((l1 == 1 || k == 1) && (l2 == k || m == 1))
        || ((l1 == m || k == 1) && (l2 == 1 || m == 1));
    let batch_ok = |l: &Layout| match (&l.stride()[..r - 2], &l.dims()[..r - 2]) {
        ([s1, s2], [_, d1]) => *s1 == s2 * d1 || l.dims()[0] == 1 || *d1 == 1,
        _ => r <= 3,
    };
    if rhs_ok && lhs_ok && batch_ok(lhs) && batch_ok(rhs) {
        return Ok(());
    }
    Err(candle_core::Error::Msg(format!(
        "matrix product that CUDA refuses (MatMulNonContiguous) in the {pass} pass: \
         lhs dims {ld:?} strides {ls:?}, rhs dims {rd:?} strides {rs:?}; make the operand contiguous"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn contiguous_and_simply_transposed_operands_pass() {
        let a = Tensor::zeros((2, 3, 4, 5), DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::zeros((2, 3, 5, 6), DType::F32, &Device::Cpu).unwrap();
        assert!(matmul(&a, &b).is_ok());
        let bt = Tensor::zeros((2, 3, 6, 5), DType::F32, &Device::Cpu).unwrap();
        assert!(matmul(&a, &bt.t().unwrap()).is_ok());
    }

    #[test]
    fn views_cuda_refuses_are_refused_here_too() {
        // Columns narrowed out of a wider matrix: rows 10 apart for 5 values.
        // The CPU gemm takes the row stride; CUDA's needs it equal to k.
        let wide = Tensor::zeros((4, 10), DType::F32, &Device::Cpu).unwrap();
        let narrow = wide.narrow(1, 0, 5).unwrap();
        let w = Tensor::zeros((5, 3), DType::F32, &Device::Cpu).unwrap();
        assert!(narrow.matmul(&w).is_ok(), "the CPU alone takes it");
        let err = matmul(&narrow, &w).unwrap_err().to_string();
        assert!(err.contains("MatMulNonContiguous"), "{err}");
        assert!(matmul(&narrow.contiguous().unwrap(), &w).is_ok());
        // [b, s, h, d] viewed as [b, h, s, d] without a copy.
        let x = Tensor::zeros((2, 7, 3, 4), DType::F32, &Device::Cpu).unwrap();
        let heads = x.transpose(1, 2).unwrap();
        let k = Tensor::zeros((2, 3, 4, 7), DType::F32, &Device::Cpu).unwrap();
        assert!(matmul(&heads, &k).is_err());
        assert!(matmul(&heads.contiguous().unwrap(), &k).is_ok());
    }
}
