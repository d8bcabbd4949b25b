//! The fused products against an f64 reference of unpack-then-multiply,
//! every kernel this CPU runs against its scalar twin, every split of the
//! rows over threads, and the bad-input checks.

mod common;

use cortex_q4::{Error, Kernel, Options, PackedMatrix, Precision, Quantizer};
use proptest::prelude::*;

const U: f64 = 1.0 / (1u64 << 24) as f64;

fn supported() -> Vec<Kernel> {
    Kernel::ALL
        .into_iter()
        .filter(|k| k.is_supported())
        .collect()
}

#[derive(Debug)]
struct Case {
    rows: usize,
    cols: usize,
    g: usize,
    batch: usize,
    packed: Vec<u8>,
    scales: Vec<f32>,
    x: Vec<f32>,
}

impl Case {
    fn matrix(&self) -> PackedMatrix<'_> {
        PackedMatrix::new(&self.packed, &self.scales, self.rows, self.cols, self.g).unwrap()
    }

    fn run(&self, kernel: Kernel, threads: usize, precision: Precision) -> Vec<f32> {
        let opts = Options::default().with_kernel(kernel).with_threads(threads);
        let mut y = vec![f32::NAN; self.batch * self.rows];
        self.matrix()
            .matmul(&opts, &self.x, self.batch, precision, &mut y)
            .unwrap();
        y
    }

    /// `(sum x * w, sum |x * w|)` in f64, per output, from unpacked weights.
    fn reference(&self) -> Vec<(f64, f64)> {
        let w: Vec<f32> = Quantizer::new(self.g)
            .unpack_to_vec(&self.packed, &self.scales, self.rows, self.cols)
            .unwrap();
        let mut out = Vec::new();
        for b in 0..self.batch {
            for r in 0..self.rows {
                let terms = (0..self.cols)
                    .map(|c| self.x[b * self.cols + c] as f64 * w[r * self.cols + c] as f64);
                out.push(terms.fold((0.0, 0.0), |(s, a), t| (s + t, a + t.abs())));
            }
        }
        out
    }

    /// Per output, `sum |w| * x_scale / 2`: what int8 activations can move it.
    fn int8_slack(&self) -> Vec<f64> {
        let w: Vec<f32> = Quantizer::new(self.g)
            .unpack_to_vec(&self.packed, &self.scales, self.rows, self.cols)
            .unwrap();
        let mut out = Vec::new();
        for b in 0..self.batch {
            let x = &self.x[b * self.cols..(b + 1) * self.cols];
            let x_scales: Vec<f64> = x
                .chunks(self.g)
                .map(|grp| grp.iter().fold(0f32, |m, v| m.max(v.abs())) as f64 / 127.0)
                .collect();
            for r in 0..self.rows {
                let s: f64 = (0..self.cols)
                    .map(|c| {
                        (w[r * self.cols + c] as f64).abs()
                            * (x_scales[c / self.g] / 2.0 + x[c].abs() as f64 * 1e-6)
                    })
                    .sum();
                out.push(s);
            }
        }
        out
    }
}

fn case() -> impl Strategy<Value = Case> {
    let g = prop_oneof![
        3 => prop::sample::select(vec![16usize, 32, 48, 64, 80, 128, 192, 256, 1024]),
        1 => 1usize..40,
    ];
    // Some cases span several of the kernels' 16-row calls.
    let rows = prop_oneof![3 => 0usize..6, 1 => 14usize..40];
    (rows, 0usize..700, g, 1usize..10).prop_flat_map(|(rows, cols, g, batch)| {
        (
            proptest::collection::vec(-2.0f32..2.0, rows * cols),
            proptest::collection::vec(-3.0f32..3.0, batch * cols),
            any::<bool>(),
        )
            .prop_map(move |(w, x, negate)| {
                let (packed, mut scales) = Quantizer::new(g)
                    .pack_to_vec(&w, rows, cols)
                    .unwrap()
                    .into_parts();
                if negate {
                    // The decoder takes negative scales; so must the products.
                    scales.iter_mut().step_by(3).for_each(|s| *s = -*s);
                }
                Case {
                    rows,
                    cols,
                    g,
                    batch,
                    packed,
                    scales,
                    x,
                }
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::proptest_cases(64)))]

    /// exact: |y - ref| <= (4 sqrt(cols) + 4) u sum |x w| + cols 2^-149.
    #[test]
    fn exact_is_within_its_bound(c in case()) {
        let reference = c.reference();
        let bound = 4.0 * (c.cols as f64).sqrt() + 4.0;
        for kernel in supported() {
            let y = c.run(kernel, 1, Precision::Exact);
            for (i, (&got, &(want, abs))) in y.iter().zip(&reference).enumerate() {
                let err = (got as f64 - want).abs();
                prop_assert!(err <= bound * U * abs + c.cols as f64 * common::SUBNORMAL, "{} y[{i}] = {got}, want {want} (err {err:e}, sum|xw| {abs})", kernel.name());
            }
        }
    }

    /// int8: every kernel within the activation-rounding slack of the exact
    /// reference, and within f32 rounding of its scalar twin.
    #[test]
    fn int8_is_within_its_bound(c in case()) {
        let reference = c.reference();
        let slack = c.int8_slack();
        let twin = c.run(Kernel::Scalar, 1, Precision::Int8);
        for kernel in supported() {
            let y = c.run(kernel, 1, Precision::Int8);
            for i in 0..y.len() {
                let (want, abs) = reference[i];
                let tolerance = slack[i] + 16.0 * (c.cols as f64 + 8.0) * U * (abs + slack[i]) + 1e-30;
                prop_assert!((y[i] as f64 - want).abs() <= tolerance, "{} y[{i}] = {}, want {want}, tol {tolerance:e}", kernel.name(), y[i]);
                let twin_tol = 8.0 * (c.cols as f64 + 8.0) * U * (abs + slack[i]) + 1e-30;
                prop_assert!((y[i] as f64 - twin[i] as f64).abs() <= twin_tol, "{} vs twin at {i}: {} vs {}", kernel.name(), y[i], twin[i]);
            }
        }
    }

    /// For one kernel, every thread count and every row split gives the
    /// same bits.
    #[test]
    fn splits_do_not_change_results(c in case(), cut in 0usize..40, threads in 0usize..4) {
        let cut = cut.min(c.rows);
        for kernel in supported() {
            for precision in [Precision::Exact, Precision::Int8] {
                let whole = c.run(kernel, 1, precision);
                prop_assert_eq!(bits(&c.run(kernel, threads, precision)), bits(&whole));
                // Two calls over [0, cut) and [cut, rows) into one strided output.
                let opts = Options::default().with_kernel(kernel);
                let mut y = vec![f32::NAN; c.batch * c.rows];
                c.matrix().matmul_rows(&opts, &c.x, c.batch, precision, 0..cut, &mut y, c.rows).unwrap();
                let rest = &mut y[cut..];
                c.matrix().matmul_rows(&opts, &c.x, c.batch, precision, cut..c.rows, rest, c.rows).unwrap();
                prop_assert_eq!(bits(&y), bits(&whole));
            }
        }
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn large_batches_and_half_activations() {
    let (rows, cols, g, batch) = (37, 200, 32, 70);
    let w: Vec<f32> = (0..rows * cols)
        .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
        .collect();
    let x: Vec<f32> = (0..batch * cols)
        .map(|i| ((i * 53) % 89) as f32 / 44.0 - 1.0)
        .collect();
    let (packed, scales) = Quantizer::new(g)
        .pack_to_vec(&w, rows, cols)
        .unwrap()
        .into_parts();
    let c = Case {
        rows,
        cols,
        g,
        batch,
        packed,
        scales,
        x,
    };
    let reference = c.reference();
    for kernel in supported() {
        let y = c.run(kernel, 0, Precision::Exact);
        for (got, (want, abs)) in y.iter().zip(&reference) {
            assert!((*got as f64 - want).abs() <= 64.0 * U * abs + 1e-30);
        }
    }
    // f16 activations are converted to f32 first.
    let halves: Vec<half::f16> = c.x.iter().map(|&v| half::f16::from_f32(v)).collect();
    let widened: Vec<f32> = halves.iter().map(|h| h.to_f32()).collect();
    let mut from_half = vec![0f32; batch * rows];
    let mut from_f32 = vec![0f32; batch * rows];
    let (m, opts) = (c.matrix(), Options::default());
    m.matmul(&opts, &halves, batch, Precision::Int8, &mut from_half)
        .unwrap();
    m.matmul(&opts, &widened, batch, Precision::Int8, &mut from_f32)
        .unwrap();
    assert_eq!(bits(&from_half), bits(&from_f32));
}

#[test]
fn bad_calls_are_refused_without_writing() {
    let (rows, cols, g) = (4, 64, 32);
    let w = vec![0.5f32; rows * cols];
    let (packed, scales) = Quantizer::new(g)
        .pack_to_vec(&w, rows, cols)
        .unwrap()
        .into_parts();
    let m = PackedMatrix::new(&packed, &scales, rows, cols, g).unwrap();
    assert!(matches!(
        PackedMatrix::new(&packed[1..], &scales, rows, cols, g),
        Err(Error::InputTooShort { .. })
    ));
    let x = vec![1f32; 2 * cols];
    let opts = Options::default();
    let mut y = vec![7f32; 2 * rows];
    let e = Precision::Exact;
    assert!(matches!(
        m.matmul(&opts, &x[1..], 2, e, &mut y),
        Err(Error::InputTooShort { .. })
    ));
    assert!(matches!(
        m.matmul(&opts, &x, 2, e, &mut y[1..]),
        Err(Error::OutputTooSmall { .. })
    ));
    assert!(matches!(
        m.matmul_rows(&opts, &x, 2, e, 1..5, &mut y, 4),
        Err(Error::BadRowRange { .. })
    ));
    assert!(matches!(
        m.matmul_rows(&opts, &x, 2, e, 0..3, &mut y, 2),
        Err(Error::BadStride { .. })
    ));
    assert!(matches!(
        m.matmul(&opts, &x, usize::MAX, e, &mut y),
        Err(Error::SizeOverflow)
    ));
    assert!(y.iter().all(|&v| v == 7.0));
    // A row range writes its own elements only.
    m.matmul_rows(&opts, &x, 2, e, 1..3, &mut y[1..], rows)
        .unwrap();
    assert_eq!([y[0], y[3], y[4], y[7]], [7.0; 4]);
    assert_eq!(y[1], 64.0 * 0.5);
}

#[cfg(feature = "candle")]
#[test]
fn candle_gemm_equals_the_slice_api() {
    use candle_core::{DType, Device, Tensor};
    let (rows, cols, g, batch) = (9, 96, 32, 4);
    let w: Vec<f32> = (0..rows * cols)
        .map(|i| ((i * 31) % 97) as f32 / 48.0 - 1.0)
        .collect();
    let x: Vec<f32> = (0..batch * cols)
        .map(|i| ((i * 17) % 83) as f32 / 41.0 - 1.0)
        .collect();
    let (packed, scales) = Quantizer::new(g)
        .pack_to_vec(&w, rows, cols)
        .unwrap()
        .into_parts();
    let dev = Device::Cpu;
    let pt = Tensor::from_vec(packed.clone(), (rows, 48), &dev).unwrap();
    let st = Tensor::from_vec(scales.clone(), (rows, 3), &dev).unwrap();
    let m = PackedMatrix::new(&packed, &scales, rows, cols, g).unwrap();
    for precision in [Precision::Exact, Precision::Int8] {
        let mut want = vec![0f32; batch * rows];
        m.matmul(&Options::default(), &x, batch, precision, &mut want)
            .unwrap();
        for dtype in [DType::F32, DType::F64] {
            let xt = Tensor::from_vec(x.clone(), (batch, cols), &dev)
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            let y = cortex_q4::gemm_4bit(&xt, &pt, &st, g, precision).unwrap();
            assert_eq!(y.dims(), [batch, rows]);
            assert_eq!(
                bits(&y.flatten_all().unwrap().to_vec1::<f32>().unwrap()),
                bits(&want)
            );
        }
    }
    let xt = Tensor::from_vec(x, (batch, cols), &dev).unwrap();
    let e = Precision::Exact;
    assert!(cortex_q4::gemm_4bit(&xt.flatten_all().unwrap(), &pt, &st, g, e).is_err());
    assert!(cortex_q4::gemm_4bit(&xt.to_dtype(DType::U8).unwrap(), &pt, &st, g, e).is_err());
    assert!(cortex_q4::gemm_4bit(&xt, &pt, &st, 64, e).is_err());
    assert!(cortex_q4::gemm_4bit(&xt, &st, &st, g, e).is_err());
    assert!(cortex_q4::gemm_4bit(&xt, &pt, &pt, g, e).is_err());
    assert!(cortex_q4::gemm_4bit(&xt, &pt, &st, 0, e).is_err());
}
