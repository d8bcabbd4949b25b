//! The encoders beyond the default (same layout, same decoder) and the
//! quality report: the signed encoder puts each group's extreme on -8, the
//! search is never worse than the default or the signed encoder on the
//! (weighted) squared error it minimises, group by group, and the C entry
//! points follow the slice API.

mod common;

use cortex_q4::encoders::{search_scale, signed_scale, weighted_error};
use cortex_q4::ffi::{
    cq4_encoder, cq4_encoder_options_default, cq4_pack_encoded_f32, cq4_quality, cq4_quality_f32,
    cq4_status,
};
use cortex_q4::{
    scalar, Buffer, Element, Encoder, Error, Kernel, Layout, Options, PackedMatrix, Quantizer,
};
use half::{bf16, f16};
use proptest::prelude::*;

fn packed(encoder: &Encoder, w: &[f32], rows: usize, cols: usize, g: usize) -> (Vec<u8>, Vec<f32>) {
    let l = Layout::new(rows, cols, g).unwrap();
    let (mut p, mut s) = (vec![0u8; l.packed_len()], vec![0f32; l.scales_len()]);
    Quantizer::new(g)
        .with_encoder(*encoder)
        .pack(w, rows, cols, &mut p, &mut s)
        .unwrap();
    (p, s)
}

/// `src` packed by `encoder` with `kernel`, scales as bits.
fn encoded<T: Element>(
    kernel: Kernel,
    encoder: &Encoder,
    src: &[T],
    rows: usize,
    cols: usize,
    g: usize,
) -> (Vec<u8>, Vec<u32>) {
    let l = Layout::new(rows, cols, g).unwrap();
    let (mut p, mut s) = (vec![0u8; l.packed_len()], vec![0f32; l.scales_len()]);
    let opts = Options::default().with_kernel(kernel);
    Quantizer::new(g)
        .with_encoder(*encoder)
        .with_options(opts)
        .pack(src, rows, cols, &mut p, &mut s)
        .unwrap();
    (p, s.iter().map(|x| x.to_bits()).collect())
}

/// Per group, `sum c (w - unpacked)^2` in f64, computed from unpack's
/// output, independently of the encoders' own error function.
fn group_errors(
    w: &[f32],
    (p, s): &(Vec<u8>, Vec<f32>),
    rows: usize,
    cols: usize,
    g: usize,
    importance: Option<&[f32]>,
) -> Vec<f64> {
    let decoded: Vec<f32> = Quantizer::new(g).unpack_to_vec(p, s, rows, cols).unwrap();
    let mut errors = vec![0f64; s.len()];
    for r in 0..rows {
        for c in 0..cols {
            let e = w[r * cols + c] as f64 - decoded[r * cols + c] as f64;
            errors[r * cols.div_ceil(g) + c / g] += importance.map_or(1.0, |i| i[c] as f64) * e * e;
        }
    }
    errors
}

/// Matrices with structure: per-row magnitudes, outlier columns, skew.
fn matrix() -> impl Strategy<Value = (usize, usize, usize, Vec<f32>)> {
    (
        1usize..5,
        1usize..150,
        prop::sample::select(vec![1usize, 3, 8, 32, 64, 128]),
    )
        .prop_flat_map(|(rows, cols, g)| {
            let values = proptest::collection::vec(-4.0f32..4.0, rows * cols);
            let row_scale = proptest::collection::vec(-12i32..4, rows);
            (values, row_scale, 0usize..cols).prop_map(move |(v, row_scale, outlier)| {
                let w = v
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| {
                        let (r, c) = (i / cols, i % cols);
                        let boost = if c == outlier { 25.0 } else { 1.0 };
                        x * x.abs() * boost * 2f32.powi(row_scale[r])
                    })
                    .collect();
                (rows, cols, g, w)
            })
        })
}

fn importance(cols: usize) -> impl Strategy<Value = Vec<f32>> {
    proptest::collection::vec(prop_oneof![1 => Just(0f32), 4 => 0.0f32..100.0], cols)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::proptest_cases(48)))]

    /// The search's weighted squared error is never above the default's or
    /// the signed encoder's, group by group, with and without importance.
    #[test]
    fn search_is_never_worse((rows, cols, g, w) in matrix(), weights in importance(150)) {
        let weights = &weights[..cols];
        for importance in [None, Some(weights)] {
            let errors = |e: &Encoder| group_errors(&w, &packed(e, &w, rows, cols, g), rows, cols, g, importance);
            let search = errors(&Encoder::Search { importance });
            for (name, other) in [("absmax", errors(&Encoder::AbsMax)), ("signed", errors(&Encoder::Signed))] {
                for (k, (&s, &o)) in search.iter().zip(&other).enumerate() {
                    prop_assert!(s <= o * (1.0 + 1e-12), "group {k}: search {s:e} > {name} {o:e}");
                }
            }
        }
    }

    /// The signed encoder maps each group's first element of largest
    /// magnitude to the -8 level, and decodes it exactly, its scale being
    /// `m / -8`.
    #[test]
    fn signed_puts_the_extreme_on_minus_eight((rows, cols, g, w) in matrix()) {
        let (p, s) = packed(&Encoder::Signed, &w, rows, cols, g);
        let decoded: Vec<f32> = Quantizer::new(g).unpack_to_vec(&p, &s, rows, cols).unwrap();
        let groups = cols.div_ceil(g);
        for r in 0..rows {
            for k in 0..groups {
                let range = r * cols + k * g..r * cols + ((k + 1) * g).min(cols);
                let mut first = range.start;
                for i in range.clone() {
                    if w[i].abs() > w[first].abs() {
                        first = i;
                    }
                }
                let m = w[first];
                if m.abs() / 8.0 < 1e-5 {
                    continue; // the scale floor applies
                }
                prop_assert_eq!(s[r * groups + k], m / -8.0);
                prop_assert_eq!(decoded[first], m);
            }
        }
    }

    /// Every kernel's encoders give the reference's bytes, with and without
    /// importance.
    #[test]
    fn kernels_encode_as_the_reference((rows, cols, g, w) in matrix(), weights in importance(150)) {
        let weights = &weights[..cols];
        let encoders = [Encoder::Signed, Encoder::Search { importance: None }, Encoder::Search { importance: Some(weights) }];
        // f16 and bf16 sources reach the twins through their own widening.
        let halves: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
        let brains: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
        for encoder in encoders {
            let reference = encoded(Kernel::Scalar, &encoder, &w, rows, cols, g);
            let reference_f16 = encoded(Kernel::Scalar, &encoder, &halves, rows, cols, g);
            let reference_bf16 = encoded(Kernel::Scalar, &encoder, &brains, rows, cols, g);
            for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
                prop_assert_eq!(&encoded(kernel, &encoder, &w, rows, cols, g), &reference, "{} {:?}", kernel.name(), encoder);
                prop_assert_eq!(&encoded(kernel, &encoder, &halves, rows, cols, g), &reference_f16, "{} {:?} f16", kernel.name(), encoder);
                prop_assert_eq!(&encoded(kernel, &encoder, &brains, rows, cols, g), &reference_bf16, "{} {:?} bf16", kernel.name(), encoder);
            }
        }
    }

    /// The same on special values: signed ties of the largest magnitude,
    /// NaN, infinities, zeros, subnormals, exact half-integer quotients.
    #[test]
    fn kernels_encode_specials_as_the_reference(
        w in proptest::collection::vec(prop::sample::select(vec![
            0.0f32, -0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1.0, -1.0, 2.0, -2.0,
            8.0, -8.0, 7.5, -7.5, 0.5, -0.5, 1e-40, -1e-40, f32::MAX, -f32::MAX, 3.0e-5,
        ]), 2 * 96),
        g in prop::sample::select(vec![16usize, 32, 48, 96]),
    ) {
        for encoder in [Encoder::Signed, Encoder::Search { importance: None }] {
            let run = |kernel: Kernel| {
                let l = Layout::new(2, 96, g).unwrap();
                let (mut p, mut s) = (vec![0u8; l.packed_len()], vec![0f32; l.scales_len()]);
                let opts = Options::default().with_kernel(kernel);
                Quantizer::new(g).with_encoder(encoder).with_options(opts).pack(&w, 2, 96, &mut p, &mut s).unwrap();
                (p, s.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
            };
            let reference = run(Kernel::Scalar);
            for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
                prop_assert_eq!(&run(kernel), &reference, "{} {:?}", kernel.name(), encoder);
            }
        }
    }

    /// Every encoder gives the same bytes on every thread count.
    #[test]
    fn encoders_do_not_depend_on_threads((rows, cols, g, w) in matrix(), threads in 0usize..4) {
        for encoder in [Encoder::Signed, Encoder::Search { importance: None }] {
            let l = Layout::new(rows, cols, g).unwrap();
            let (mut p, mut s) = (vec![0u8; l.packed_len()], vec![0f32; l.scales_len()]);
            let opts = Options::default().with_threads(threads);
            Quantizer::new(g).with_encoder(encoder).with_options(opts).pack(&w, rows, cols, &mut p, &mut s).unwrap();
            prop_assert_eq!((p, s), packed(&encoder, &w, rows, cols, g));
        }
    }
}

#[test]
fn encoders_split_over_threads_give_the_same_bytes() {
    // Big enough that several tasks really run on the pool.
    let (rows, cols, g) = (48, 4096, 32);
    let w: Vec<f32> = (0..rows * cols)
        .map(|i| ((i * 7919) % 2001) as f32 / 100.0 - 10.0)
        .collect();
    for encoder in [Encoder::Signed, Encoder::Search { importance: None }] {
        let want = encoded(Kernel::auto(), &encoder, &w, rows, cols, g);
        for threads in [0, 2, 3] {
            let l = Layout::new(rows, cols, g).unwrap();
            let (mut p, mut s) = (vec![0u8; l.packed_len()], vec![0f32; l.scales_len()]);
            let opts = Options::default().with_threads(threads);
            Quantizer::new(g)
                .with_encoder(encoder)
                .with_options(opts)
                .pack(&w, rows, cols, &mut p, &mut s)
                .unwrap();
            let s: Vec<u32> = s.iter().map(|x| x.to_bits()).collect();
            assert_eq!((p, s), want, "{encoder:?} threads {threads}");
        }
    }
}

#[cfg(feature = "candle")]
#[test]
fn candle_packs_with_every_encoder() {
    let w: Vec<f32> = (0..300)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 9.0)
        .collect();
    let t = candle_core::Tensor::from_vec(w.clone(), (3, 100), &candle_core::Device::Cpu).unwrap();
    for encoder in [
        Encoder::AbsMax,
        Encoder::Signed,
        Encoder::Search { importance: None },
    ] {
        let (p, s) = cortex_q4::pack_4bit_encoded(&t, 32, &encoder).unwrap();
        let got = (
            p.flatten_all().unwrap().to_vec1::<u8>().unwrap(),
            s.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        assert_eq!(got, packed(&encoder, &w, 3, 100, 32));
    }
}

/// Activations `[n, cols]` from a fixed seed, columns of different scales.
#[cfg(feature = "candle")]
fn activations(n: usize, cols: usize) -> Vec<f32> {
    (0..n * cols)
        .map(|i| {
            let bits = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
            (bits as f32 / (1 << 24) as f32 - 0.5) * (1 + i % cols % 7) as f32
        })
        .collect()
}

/// `Hessian::accumulate` of the values of `t` (`[n, cols]`), in one call.
#[cfg(feature = "candle")]
fn slice_hessian<T: Element + candle_core::WithDType>(
    t: &candle_core::Tensor,
) -> cortex_q4::Hessian {
    let (n, cols) = t.dims2().unwrap();
    let mut h = cortex_q4::Hessian::new(cols).unwrap();
    let values = t.flatten_all().unwrap().to_vec1::<T>().unwrap();
    h.accumulate(&Options::default(), &values, n).unwrap();
    h
}

#[cfg(feature = "candle")]
#[test]
fn candle_accumulates_the_slice_apis_hessian() {
    use candle_core::{DType, Device, Tensor};
    use cortex_q4::{accumulate_hessian, accumulate_hessian_with, Hessian};

    let (n, cols) = (300, 24);
    let x = activations(n, cols);
    let t = Tensor::from_vec(x.clone(), (n, cols), &Device::Cpu).unwrap();
    let options = Options::default();
    for dtype in [DType::F32, DType::F16, DType::BF16, DType::F64] {
        let t = t.to_dtype(dtype).unwrap();
        let want = match dtype {
            DType::F32 => slice_hessian::<f32>(&t),
            DType::F16 => slice_hessian::<f16>(&t),
            DType::BF16 => slice_hessian::<bf16>(&t),
            _ => slice_hessian::<f64>(&t),
        };
        let mut got = Hessian::new(cols).unwrap();
        accumulate_hessian(&mut got, &t).unwrap();
        assert_eq!(got, want, "{dtype:?}");
        // [batch, seq, cols] is its rows flattened; threads change nothing.
        let mut got = Hessian::new(cols).unwrap();
        let batched = t.reshape((3, n / 3, cols)).unwrap();
        accumulate_hessian_with(&options.with_threads(2), &mut got, &batched).unwrap();
        assert_eq!(got, want, "{dtype:?} [3, {}, {cols}]", n / 3);
    }
    // In two calls, as the slice API in the same two.
    let (a, b) = (t.narrow(0, 0, 100).unwrap(), t.narrow(0, 100, 200).unwrap());
    let mut got = Hessian::new(cols).unwrap();
    accumulate_hessian(&mut got, &a).unwrap();
    accumulate_hessian(&mut got, &b).unwrap();
    let mut want = Hessian::new(cols).unwrap();
    want.accumulate(&options, &x[..100 * cols], 100).unwrap();
    want.accumulate(&options, &x[100 * cols..], 200).unwrap();
    assert_eq!((got.samples(), &got), (300, &want));
    // A non-contiguous view is read as its values.
    let transposed = Tensor::from_vec(x.clone(), (n, cols), &Device::Cpu)
        .unwrap()
        .t()
        .unwrap()
        .contiguous()
        .unwrap()
        .t()
        .unwrap();
    assert!(!transposed.is_contiguous());
    let mut got = Hessian::new(cols).unwrap();
    accumulate_hessian(&mut got, &transposed).unwrap();
    assert_eq!(got, slice_hessian::<f32>(&t));

    // Refused, the Hessian unchanged.
    let mut h = Hessian::new(cols).unwrap();
    for bad in [
        Tensor::zeros((4, cols + 1), DType::F32, &Device::Cpu).unwrap(),
        Tensor::zeros(cols, DType::F32, &Device::Cpu).unwrap(),
        Tensor::zeros((4, cols), DType::U8, &Device::Cpu).unwrap(),
        Tensor::zeros((2, 2, cols), DType::I64, &Device::Cpu).unwrap(),
    ] {
        let e = accumulate_hessian(&mut h, &bad).unwrap_err().to_string();
        assert!(e.starts_with("cortex_q4: "), "{e}");
        assert_eq!(h, Hessian::new(cols).unwrap(), "{:?}", bad.shape());
    }
}

#[cfg(feature = "candle")]
#[test]
fn candle_packs_with_the_error_compensating_encoder() {
    use candle_core::{DType, Device, Tensor};
    use cortex_q4::{accumulate_hessian, pack_4bit_encoded, Hessian};

    let (n, rows, cols) = (200, 5, 70);
    let x = Tensor::from_vec(activations(n, cols), (n, cols), &Device::Cpu).unwrap();
    let mut h = Hessian::new(cols).unwrap();
    accumulate_hessian(&mut h, &x).unwrap();
    let w: Vec<f32> = (0..rows * cols)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 9.0)
        .collect();
    let t = Tensor::from_vec(w.clone(), (rows, cols), &Device::Cpu).unwrap();
    for (g, damping) in [(32, Encoder::DEFAULT_DAMPING), (16, 0.0), (7, 0.3)] {
        let encoder = Encoder::ErrorCompensating {
            hessian: h.matrix(),
            damping,
        };
        let plain = packed(&Encoder::Search { importance: None }, &w, rows, cols, g);
        let want = packed(&encoder, &w, rows, cols, g);
        assert_ne!(want, plain, "g = {g}: the Hessian changes the packing");
        let (p, s) = pack_4bit_encoded(&t, g, &encoder).unwrap();
        let got = (
            p.flatten_all().unwrap().to_vec1::<u8>().unwrap(),
            s.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        assert_eq!(got, want, "g = {g}, damping {damping}");
        // f16 weights: the slice API's pack of the same f16 values.
        let t16 = t.to_dtype(DType::F16).unwrap();
        let w16 = t16.flatten_all().unwrap().to_vec1::<f16>().unwrap();
        let l = Layout::new(rows, cols, g).unwrap();
        let (mut p16, mut s16) = (vec![0u8; l.packed_len()], vec![0f32; l.scales_len()]);
        Quantizer::new(g)
            .with_encoder(encoder)
            .pack(&w16, rows, cols, &mut p16, &mut s16)
            .unwrap();
        let (p, s) = pack_4bit_encoded(&t16, g, &encoder).unwrap();
        assert_eq!(p.flatten_all().unwrap().to_vec1::<u8>().unwrap(), p16);
        assert_eq!(s.flatten_all().unwrap().to_vec1::<f32>().unwrap(), s16);
    }
    // The encoder's own refusals come back as errors.
    let bad = Encoder::ErrorCompensating {
        hessian: &h.matrix()[1..],
        damping: 0.05,
    };
    let e = pack_4bit_encoded(&t, 32, &bad).unwrap_err().to_string();
    assert!(e.starts_with("cortex_q4: "), "{e}");
}

#[test]
fn the_default_encoder_is_pack() {
    let w: Vec<f32> = (0..300)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 9.0)
        .collect();
    assert_eq!(
        packed(&Encoder::AbsMax, &w, 3, 100, 32),
        Quantizer::new(32)
            .pack_to_vec(&w, 3, 100)
            .unwrap()
            .into_parts()
    );
    // And both are the format's reference, row by row.
    let l = Layout::new(3, 100, 32).unwrap();
    let (mut p, mut s) = (vec![0u8; l.packed_len()], vec![0f32; l.scales_len()]);
    for ((row, p), s) in w
        .chunks_exact(100)
        .zip(p.chunks_exact_mut(l.packed_row_bytes()))
        .zip(s.chunks_exact_mut(l.groups_per_row()))
    {
        scalar::pack_row(row, 32, p, s);
    }
    assert_eq!(packed(&Encoder::AbsMax, &w, 3, 100, 32), (p, s));
}

#[test]
fn signed_scales_at_the_edges() {
    // First of equal magnitudes wins; a positive extreme gets a negative scale.
    assert_eq!(signed_scale(&[3.0f32, -3.0, 1.0]), -0.375);
    assert_eq!(signed_scale(&[-3.0f32, 3.0, 1.0]), 0.375);
    // NaN ignored; zeros get the floor, as with the default.
    assert_eq!(signed_scale(&[f32::NAN, -16.0]), 2.0);
    assert_eq!(signed_scale(&[0.0f32, -0.0]), 1e-5);
    assert_eq!(signed_scale(&[f32::INFINITY, 1.0]), f32::NEG_INFINITY);
}

#[test]
fn search_falls_back_to_the_default_on_non_finite_groups() {
    for group in [
        [1.0f32, f32::NAN, -2.0],
        [f32::INFINITY, 1.0, 2.0],
        [0.0; 3],
    ] {
        assert_eq!(
            search_scale(&group, None).to_bits(),
            cortex_q4::scalar::group_scale(&group).to_bits()
        );
    }
    // A group the default cannot fit well: the search finds a better scale.
    let group = [1.0f32, 0.9, 0.8, -0.05];
    let best = search_scale(&group, None);
    assert!(weighted_error(&group, None, best) < weighted_error(&group, None, 1.0 / 7.0));
}

#[test]
fn bad_importance_is_refused_without_writing() {
    let w = [1.0f32; 8];
    let (mut p, mut s) = (vec![0xA5u8; 4], vec![-1f32; 1]);
    let short = [1.0f32; 7];
    fn search(importance: &[f32]) -> Encoder<'_> {
        Encoder::Search {
            importance: Some(importance),
        }
    }
    assert_eq!(
        Quantizer::new(8)
            .with_encoder(search(&short))
            .pack(&w, 1, 8, &mut p, &mut s),
        Err(Error::InputTooShort {
            buffer: Buffer::Importance,
            needed: 8,
            got: 7
        })
    );
    for (bad, index) in [(-1.0f32, 2), (f32::NAN, 5), (f32::INFINITY, 0)] {
        let mut weights = [1.0f32; 8];
        weights[index] = bad;
        assert_eq!(
            Quantizer::new(8)
                .with_encoder(search(&weights))
                .pack(&w, 1, 8, &mut p, &mut s),
            Err(Error::BadImportance { index })
        );
    }
    assert_eq!((p, s), (vec![0xA5u8; 4], vec![-1f32; 1]));
}

#[test]
fn quality_matches_its_definition() {
    // The README's example: [7, -5.6, 0, 3.5] decodes to [7, -6, 0, 4].
    let w = [7.0f32, -5.6, 0.0, 3.5];
    let (p, s) = Quantizer::new(4)
        .pack_to_vec(&w, 1, 4)
        .unwrap()
        .into_parts();
    let q = PackedMatrix::new(&p, &s, 1, 4, 4)
        .unwrap()
        .quality(&w)
        .unwrap();
    let e2 = (-5.6f32 as f64 + 6.0).powi(2) + 0.25;
    let w2: f64 = w.iter().map(|&x| (x as f64).powi(2)).sum();
    assert_eq!(q.rmse, (e2 / 4.0).sqrt());
    assert_eq!(q.max_abs_error, 0.5);
    assert_eq!(q.relative_frobenius, (e2 / w2).sqrt());
    assert_eq!(q.snr_db, 10.0 * (w2 / e2).log10());
    // Exact: no error, infinite SNR.
    let exact = [7.0f32, -8.0];
    let p = [0x0Fu8]; // nibbles 15 and 0 at scale 1
    let q = PackedMatrix::new(&p, &[1.0], 1, 2, 2)
        .unwrap()
        .quality(&exact)
        .unwrap();
    assert_eq!(
        (q.rmse, q.relative_frobenius, q.snr_db),
        (0.0, 0.0, f64::INFINITY)
    );
    assert!(matches!(
        PackedMatrix::new(&p, &[], 1, 2, 2).and_then(|m| m.quality(&exact)),
        Err(Error::InputTooShort {
            buffer: Buffer::Scales,
            ..
        })
    ));
}

fn status_of<T>(r: &Result<T, Error>) -> cq4_status {
    r.as_ref()
        .map_or_else(|&e| cq4_status::from(e), |_| cq4_status::CQ4_OK)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::proptest_cases(48)))]

    /// `cq4_pack_encoded_f32` returns the slice API's verdict and writes
    /// what it writes, nothing on error; `cq4_quality_f32` reports what
    /// `quality` reports.
    #[test]
    fn c_entry_points_follow_the_slice_api(
        (rows, cols, g, w) in matrix(),
        id in 0u32..3,
        weights in importance(150),
        importance_len in prop_oneof![Just(usize::MAX), 0usize..150],
        poison in any::<bool>(),
    ) {
        let mut weights = weights[..cols].to_vec();
        if poison {
            weights[cols / 2] = -1.0;
        }
        let with_importance = id == 2 && importance_len != usize::MAX;
        let importance_len = importance_len.min(cols);
        let encoder = match id {
            0 => Encoder::AbsMax,
            1 => Encoder::Signed,
            _ => Encoder::Search { importance: with_importance.then(|| &weights[..importance_len]) },
        };
        let l = Layout::new(rows, cols, g).unwrap();
        let (mut want_p, mut want_s) = (vec![0xA5u8; l.packed_len()], vec![-1f32; l.scales_len()]);
        let verdict = Quantizer::new(g).with_encoder(encoder).pack(&w, rows, cols, &mut want_p, &mut want_s);
        let mut c = cq4_encoder_options_default();
        c.encoder = [
            cq4_encoder::CQ4_ENCODER_ABSMAX,
            cq4_encoder::CQ4_ENCODER_SIGNED,
            cq4_encoder::CQ4_ENCODER_SEARCH,
        ][id as usize] as u32;
        if with_importance {
            c.importance = weights.as_ptr();
            c.importance_len = importance_len;
        }
        let (mut p, mut s) = (vec![0xA5u8; l.packed_len()], vec![-1f32; l.scales_len()]);
        // SAFETY: each pointer is valid for its declared length.
        let status = unsafe {
            cq4_pack_encoded_f32(w.as_ptr(), w.len(), rows, cols, g, p.as_mut_ptr(), p.len(),
                s.as_mut_ptr(), s.len(), std::ptr::null(), &c)
        };
        prop_assert_eq!(status, status_of(&verdict));
        prop_assert_eq!((&p, &s), (&want_p, &want_s));
        if verdict.is_err() {
            // Nothing written, by either surface.
            prop_assert!(p.iter().all(|&b| b == 0xA5) && s.iter().all(|&x| x == -1.0));
        }

        if status == cq4_status::CQ4_OK {
            let mut report = cq4_quality::default();
            // SAFETY: as above; `report` is valid for one write.
            let status = unsafe {
                cq4_quality_f32(w.as_ptr(), w.len(), p.as_ptr(), p.len(), s.as_ptr(), s.len(),
                    rows, cols, g, &mut report)
            };
            prop_assert_eq!(status, cq4_status::CQ4_OK);
            let q = PackedMatrix::new(&p, &s, rows, cols, g).unwrap().quality(&w).unwrap();
            prop_assert_eq!(report.rmse.to_bits(), q.rmse.to_bits());
            prop_assert_eq!(report.snr_db.to_bits(), q.snr_db.to_bits());
        }
    }
}
