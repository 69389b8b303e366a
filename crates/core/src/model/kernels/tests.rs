//! Each fused kernel against the same function from candle's primitive ops:
//! values and every input's gradient.

use super::{attention, gelu, layer_norm, linear, AttentionDropout};
use crate::model::layers;
use crate::rng::SeededRng;
use candle_core::{DType, Device, Result, Tensor, Var, D};

fn random(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = SeededRng::new(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.next_normal() as f32).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

/// Output and input gradients of `f` under the loss Σ f(inputs) ⊙ r, r fixed.
fn value_and_grads(
    inputs: &[Tensor],
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
) -> (Tensor, Vec<Tensor>) {
    let vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let out = f(&tensors).unwrap();
    let r = random(out.dims(), 99);
    let grads = (&out * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let g = tensors
        .iter()
        .map(|t| grads.get(t).expect("a gradient").clone())
        .collect();
    (out, g)
}

fn assert_same(
    fused: (Tensor, Vec<Tensor>),
    reference: (Tensor, Vec<Tensor>),
    tol: f32,
    what: &str,
) {
    let d = max_diff(&fused.0, &reference.0);
    assert!(d <= tol, "{what}: outputs differ by {d}");
    for (i, (a, b)) in fused.1.iter().zip(&reference.1).enumerate() {
        let d = max_diff(a, b);
        assert!(d <= tol, "{what}: gradient of input {i} differs by {d}");
    }
}

#[test]
fn linear_matches_matmul_plus_bias() {
    let inputs = [random(&[2, 5, 8], 1), random(&[6, 8], 2), random(&[6], 3)];
    let fused = value_and_grads(&inputs, |t| linear(&t[0], &t[1], &t[2]));
    let reference = value_and_grads(&inputs, |t| {
        t[0].reshape((10, 8))?
            .matmul(&t[1].t()?)?
            .broadcast_add(&t[2])?
            .reshape((2, 5, 6))
    });
    assert_same(fused, reference, 1e-5, "linear");
}

#[test]
fn layer_norm_matches_the_primitive_one() {
    let inputs = [
        (random(&[3, 4, 40], 4) * 3.0).unwrap(),
        random(&[40], 5),
        random(&[40], 6),
    ];
    let fused = value_and_grads(&inputs, |t| layer_norm(&t[0], &t[1], &t[2], 1e-12));
    let reference = value_and_grads(&inputs, |t| {
        layers::LayerNorm {
            weight: t[1].clone(),
            bias: t[2].clone(),
            eps: 1e-12,
        }
        .forward(&t[0])
    });
    assert_same(fused, reference, 2e-5, "layer_norm");
}

#[test]
fn gelu_matches_candles_erf_gelu() {
    let inputs = [(random(&[7, 33], 7) * 3.0).unwrap()];
    let fused = value_and_grads(&inputs, |t| gelu(&t[0]));
    let reference = value_and_grads(&inputs, |t| t[0].gelu_erf());
    assert_same(fused, reference, 2e-6, "gelu");
}

/// Attention from primitive ops, as Hugging Face's BertSelfAttention (no dropout).
fn reference_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    keep: &Tensor,
    heads: usize,
) -> Result<Tensor> {
    let (b, s, h) = q.dims3()?;
    let d = h / heads;
    let split = |t: &Tensor| t.reshape((b, s, heads, d))?.transpose(1, 2)?.contiguous();
    let mask = layers::additive_mask(keep, DType::F32)?;
    let scores = (split(q)?.matmul(&split(k)?.t()?)? / (d as f64).sqrt())?.broadcast_add(&mask)?;
    let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
    probs
        .matmul(&split(v)?)?
        .transpose(1, 2)?
        .reshape((b, s, h))
}

#[test]
fn attention_matches_the_primitive_one_with_padding() {
    let (b, s, h, heads) = (2, 19, 12, 3);
    let inputs = [
        random(&[b, s, h], 8),
        random(&[b, s, h], 9),
        random(&[b, s, h], 10),
    ];
    // The second window is padded after 11 positions.
    let keep: Vec<u32> = (0..b * s).map(|i| u32::from(i < s || i % s < 11)).collect();
    let keep = Tensor::from_vec(keep, (b, s), &Device::Cpu).unwrap();
    let fused = value_and_grads(&inputs, |t| {
        attention(&t[0], &t[1], &t[2], &keep, heads, None, true)
    });
    let reference = value_and_grads(&inputs, |t| {
        reference_attention(&t[0], &t[1], &t[2], &keep, heads)
    });
    assert_same(fused, reference, 1e-5, "attention");
    // Inference (no graph) gives the same values.
    let plain = attention(
        &inputs[0], &inputs[1], &inputs[2], &keep, heads, None, false,
    )
    .unwrap();
    assert!(
        max_diff(
            &plain,
            &value_and_grads(&inputs, |t| reference_attention(
                &t[0], &t[1], &t[2], &keep, heads
            ))
            .0
        ) <= 1e-5
    );
}

#[test]
fn attention_dropout_is_seeded_scaled_and_about_p() {
    // q = k = 0 makes every probability 1/s; v = identity makes the output those probabilities.
    let s = 64;
    let zeros = Tensor::zeros((1, s, s), DType::F32, &Device::Cpu).unwrap();
    let eye = Tensor::eye(s, DType::F32, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let keep = Tensor::ones((1, s), DType::U32, &Device::Cpu).unwrap();
    let drop = |seed| Some(AttentionDropout { p: 0.1, seed });
    let out = attention(&zeros, &zeros, &eye, &keep, 1, drop(5), true).unwrap();
    let values: Vec<f32> = out.flatten_all().unwrap().to_vec1().unwrap();
    let kept = 1.0 / (s as f32 * 0.9);
    assert!(values.iter().all(|&v| v == 0.0 || (v - kept).abs() < 1e-7));
    let dropped = values.iter().filter(|&&v| v == 0.0).count() as f64 / values.len() as f64;
    assert!((dropped - 0.1).abs() < 0.02, "dropped {dropped}");
    let again = attention(&zeros, &zeros, &eye, &keep, 1, drop(5), true).unwrap();
    assert_eq!(max_diff(&out, &again), 0.0);
    let other = attention(&zeros, &zeros, &eye, &keep, 1, drop(6), true).unwrap();
    assert!(max_diff(&out, &other) > 0.0);
}

#[test]
fn attention_gradients_with_dropout_match_finite_differences() {
    let (b, s, h, heads) = (1, 6, 4, 2);
    let inputs = [
        random(&[b, s, h], 11),
        random(&[b, s, h], 12),
        random(&[b, s, h], 13),
    ];
    let keep = Tensor::ones((b, s), DType::U32, &Device::Cpu).unwrap();
    let drop = Some(AttentionDropout { p: 0.3, seed: 77 });
    let f = |t: &[Tensor]| attention(&t[0], &t[1], &t[2], &keep, heads, drop, true);
    let (_, grads) = value_and_grads(&inputs, f);
    let r = random(&[b, s, h], 99);
    let loss = |t: &[Tensor]| -> f64 {
        let out = f(t).unwrap();
        let v: f32 = (&out * &r).unwrap().sum_all().unwrap().to_scalar().unwrap();
        f64::from(v)
    };
    let eps = 1e-2f32;
    for (which, grad) in grads.iter().enumerate() {
        let g: Vec<f32> = grad.flatten_all().unwrap().to_vec1().unwrap();
        for i in [0, 5, 13, 23] {
            let bump = |sign: f32| {
                let mut t = inputs.to_vec();
                let mut v: Vec<f32> = t[which].flatten_all().unwrap().to_vec1().unwrap();
                v[i] += sign * eps;
                t[which] = Tensor::from_vec(v, (b, s, h), &Device::Cpu).unwrap();
                loss(&t)
            };
            let numeric = (bump(1.0) - bump(-1.0)) / (2.0 * f64::from(eps));
            let err = (numeric - f64::from(g[i])).abs();
            assert!(
                err < 2e-3 + 1e-2 * numeric.abs(),
                "input {which}[{i}]: numeric {numeric}, analytic {}",
                g[i]
            );
        }
    }
}

/// k longer than one gemm block, with a transposed lhs and onto a seeded
/// dst: the blocks must add up to the whole product, against f64 sums.
#[test]
fn a_long_k_is_summed_block_by_block_into_the_whole_product() {
    use super::matmul::{gemm, View, ViewMut};
    let (m, n, k) = (7, 5, 1300);
    let mut rng = SeededRng::new(3);
    let mut draw =
        |len: usize| -> Vec<f32> { (0..len).map(|_| rng.next_normal() as f32).collect() };
    let lhs_t = draw(k * m); // stored k × m, read as its transpose
    let rhs = draw(k * n);
    let seed = draw(m * n);
    for accumulate in [false, true] {
        let mut dst = seed.clone();
        // SAFETY: every view covers exactly its vector.
        unsafe {
            gemm(
                m,
                n,
                k,
                ViewMut::row_major(&mut dst, n),
                View::row_major(&lhs_t, m).t(),
                View::row_major(&rhs, n),
                accumulate,
                0.5,
                1,
            )
        };
        for i in 0..m {
            for j in 0..n {
                let sum: f64 = (0..k)
                    .map(|p| f64::from(lhs_t[p * m + i]) * f64::from(rhs[p * n + j]))
                    .sum();
                let want = 0.5 * sum
                    + if accumulate {
                        f64::from(seed[i * n + j])
                    } else {
                        0.0
                    };
                let got = f64::from(dst[i * n + j]);
                assert!(
                    (got - want).abs() < 1e-3,
                    "({i}, {j}): {got} against {want}"
                );
            }
        }
    }
}
