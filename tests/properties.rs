//! Property tests: random shapes, group sizes and values (special values and
//! exact ties included) through every path, against the scalar reference.

#[cfg(feature = "candle")]
use candle_core::{Device, Tensor};
use cortex_q4::scalar;
#[cfg(feature = "candle")]
use cortex_q4::{pack_4bit_symmetric, unpack_4bit_symmetric, unpack_4bit_symmetric_to};
use cortex_q4::{Layout, Quantizer};
use half::{bf16, f16};
use proptest::prelude::*;

fn special() -> impl Strategy<Value = f32> {
    prop_oneof![
        Just(0.0f32),
        Just(-0.0),
        Just(f32::NAN),
        Just(f32::INFINITY),
        Just(f32::NEG_INFINITY),
        Just(f32::MAX),
        Just(-f32::MAX),
        Just(f32::MIN_POSITIVE),
        Just(-1e-45),
        Just(0.49999997),
        (-1e-37f32..1e-37),
        any::<u32>().prop_map(f32::from_bits),
    ]
}

fn weight() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => -4.0f32..4.0,
        2 => (-30.0f32..30.0).prop_map(f32::exp),
        1 => special(),
    ]
}

/// A matrix whose groups often start with their largest element followed by
/// exact ties `(k + 0.5) * scale` of that group's scale.
fn matrix() -> impl Strategy<Value = (usize, usize, usize, Vec<f32>)> {
    (0usize..5, 0usize..80, 1usize..70, any::<bool>()).prop_flat_map(|(rows, cols, g, ties)| {
        let n = rows * cols;
        let values = if ties {
            (0.01f32..100.0, proptest::collection::vec(-8i32..7, n))
                .prop_map(move |(m, ks)| {
                    let s = scalar::group_scale(&[m]);
                    (0..ks.len())
                        .map(|i| {
                            if i % g == 0 {
                                m
                            } else {
                                (ks[i] as f32 + 0.5) * s
                            }
                        })
                        .collect()
                })
                .boxed()
        } else {
            proptest::collection::vec(weight(), n).boxed()
        };
        (Just(rows), Just(cols), Just(g), values)
    })
}

/// The reference applied row by row, straight from `kernels::scalar`.
fn reference_pack(src: &[f32], rows: usize, cols: usize, g: usize) -> (Vec<u8>, Vec<f32>) {
    let l = Layout::new(rows, cols, g).unwrap();
    let mut packed = vec![0u8; l.packed_len()];
    let mut scales = vec![0f32; l.scales_len()];
    for r in 0..rows {
        scalar::pack_row(
            &src[r * cols..(r + 1) * cols],
            g,
            &mut packed[r * l.packed_row_bytes()..(r + 1) * l.packed_row_bytes()],
            &mut scales[r * l.groups_per_row()..(r + 1) * l.groups_per_row()],
        );
    }
    (packed, scales)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

proptest! {
    #[test]
    fn pack_equals_reference((rows, cols, g, src) in matrix()) {
        let (packed, scales) = Quantizer::new(g).pack_to_vec(&src, rows, cols).unwrap().into_parts();
        let (want_packed, want_scales) = reference_pack(&src, rows, cols, g);
        prop_assert_eq!(packed, want_packed);
        prop_assert_eq!(bits(&scales), bits(&want_scales));
    }

    #[test]
    fn round_trip_error_is_at_most_half_a_step((rows, cols, g, src) in matrix()) {
        let (packed, scales) = Quantizer::new(g).pack_to_vec(&src, rows, cols).unwrap().into_parts();
        let out: Vec<f32> = Quantizer::new(g).unpack_to_vec(&packed, &scales, rows, cols).unwrap();
        let groups = cols.div_ceil(g);
        for r in 0..rows {
            for k in 0..groups {
                let span = r * cols + k * g..r * cols + ((k + 1) * g).min(cols);
                if src[span.clone()].iter().any(|w| !w.is_finite() || w.abs() > 1e37) {
                    continue;
                }
                let scale = scales[r * groups + k];
                for i in span {
                    let err = (src[i] - out[i]).abs();
                    prop_assert!(err <= scale * (0.5 + 1e-6), "w {} -> {} (scale {})", src[i], out[i], scale);
                }
            }
        }
    }

    #[test]
    fn unused_nibbles_encode_zero((rows, cols, g, src) in matrix()) {
        let (packed, _) = Quantizer::new(g).pack_to_vec(&src, rows, cols).unwrap().into_parts();
        let l = Layout::new(rows, cols, g).unwrap();
        for r in 0..rows {
            for c in cols..l.groups_per_row() * l.bytes_per_group() * 2 {
                let (k, i) = (c / g, c % g);
                if k >= l.groups_per_row() { break; }
                let byte = packed[r * l.packed_row_bytes() + k * l.bytes_per_group() + i / 2];
                prop_assert_eq!(if i % 2 == 0 { byte & 15 } else { byte >> 4 }, 8);
            }
            if g % 2 == 1 {
                for k in 0..l.groups_per_row() {
                    let last = packed[r * l.packed_row_bytes() + (k + 1) * l.bytes_per_group() - 1];
                    prop_assert_eq!(last >> 4, 8);
                }
            }
        }
    }

    #[test]
    fn row_splits_give_the_same_bytes((rows, cols, g, src) in matrix(), cut in 0usize..5) {
        let cut = cut.min(rows);
        let l = Layout::new(rows, cols, g).unwrap();
        let (whole_p, whole_s) = Quantizer::new(g).pack_to_vec(&src, rows, cols).unwrap().into_parts();
        let mut packed = vec![0u8; l.packed_len()];
        let mut scales = vec![0f32; l.scales_len()];
        let (p0, p1) = packed.split_at_mut(cut * l.packed_row_bytes());
        let (s0, s1) = scales.split_at_mut(cut * l.groups_per_row());
        let (x0, x1) = src.split_at(cut * cols);
        let q = Quantizer::new(g);
        q.pack(x0, cut, cols, p0, s0).unwrap();
        q.pack(x1, rows - cut, cols, p1, s1).unwrap();
        prop_assert_eq!(packed, whole_p);
        prop_assert_eq!(bits(&scales), bits(&whole_s));
    }

    #[test]
    fn unpack_is_the_elementwise_definition(
        (rows, cols, g) in (0usize..5, 0usize..80, 1usize..70),
        seed in any::<u64>(),
        scale_bits in proptest::collection::vec(any::<u32>(), 400),
    ) {
        let l = Layout::new(rows, cols, g).unwrap();
        let packed: Vec<u8> = (0..l.packed_len()).map(|i| (seed.rotate_left(i as u32 % 64) as u8) ^ (i as u8)).collect();
        let scales: Vec<f32> = (0..l.scales_len()).map(|i| f32::from_bits(scale_bits[i % 400])).collect();
        let out: Vec<f32> = Quantizer::new(g).unpack_to_vec(&packed, &scales, rows, cols).unwrap();
        for r in 0..rows {
            for c in 0..cols {
                let byte = packed[r * l.packed_row_bytes() + (c / g) * g.div_ceil(2) + (c % g) / 2];
                let u = if c % g % 2 == 0 { byte & 15 } else { byte >> 4 };
                let want = (u as f32 - 8.0) * scales[r * l.groups_per_row() + c / g];
                let got = out[r * cols + c];
                prop_assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()));
            }
        }
    }

    #[test]
    fn narrow_and_wide_inputs_are_converted_first((rows, cols, g, src) in matrix()) {
        let q = Quantizer::new(g);
        let halfs: Vec<f16> = src.iter().map(|&v| f16::from_f32(v)).collect();
        let widened: Vec<f32> = halfs.iter().map(|h| h.to_f32()).collect();
        prop_assert_eq!(q.pack_to_vec(&halfs, rows, cols).unwrap().into_parts(), q.pack_to_vec(&widened, rows, cols).unwrap().into_parts());
        let brains: Vec<bf16> = src.iter().map(|&v| bf16::from_f32(v)).collect();
        let widened: Vec<f32> = brains.iter().map(|h| h.to_f32()).collect();
        prop_assert_eq!(q.pack_to_vec(&brains, rows, cols).unwrap().into_parts(), q.pack_to_vec(&widened, rows, cols).unwrap().into_parts());
        let doubles: Vec<f64> = src.iter().map(|&v| v as f64 * 1.000000001).collect();
        let narrowed: Vec<f32> = doubles.iter().map(|&d| d as f32).collect();
        prop_assert_eq!(q.pack_to_vec(&doubles, rows, cols).unwrap().into_parts(), q.pack_to_vec(&narrowed, rows, cols).unwrap().into_parts());
    }

    #[cfg(feature = "candle")]
    #[test]
    fn candle_api_equals_slice_api((rows, cols, g, src) in matrix(), transposed in any::<bool>()) {
        let dev = Device::Cpu;
        // A transposed view is not contiguous: it must be read in logical order.
        let t = if transposed {
            let mut col_major = vec![0f32; rows * cols];
            for r in 0..rows { for c in 0..cols { col_major[c * rows + r] = src[r * cols + c]; } }
            Tensor::from_vec(col_major, (cols, rows), &dev).unwrap().t().unwrap()
        } else {
            Tensor::from_vec(src.clone(), (rows, cols), &dev).unwrap()
        };
        let (want_p, want_s) = Quantizer::new(g).pack_to_vec(&src, rows, cols).unwrap().into_parts();
        for dtype in [candle_core::DType::F32, candle_core::DType::F16, candle_core::DType::BF16, candle_core::DType::F64] {
            let t = t.to_dtype(dtype).unwrap();
            let (p, s) = pack_4bit_symmetric(&t, g).unwrap();
            let p = p.flatten_all().unwrap().to_vec1::<u8>().unwrap();
            let s = s.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            if dtype == candle_core::DType::F32 || dtype == candle_core::DType::F64 {
                prop_assert_eq!(&p, &want_p);
                prop_assert_eq!(bits(&s), bits(&want_s));
            } else {
                let narrow = t.flatten_all().unwrap().to_dtype(candle_core::DType::F32).unwrap().to_vec1::<f32>().unwrap();
                prop_assert_eq!((p, bits(&s)), { let (a, b) = Quantizer::new(g).pack_to_vec(&narrow, rows, cols).unwrap().into_parts(); (a, bits(&b)) });
            }
        }
        let l = Layout::new(rows, cols, g).unwrap();
        let pt = Tensor::from_vec(want_p.clone(), (rows, l.packed_row_bytes()), &dev).unwrap();
        let st = Tensor::from_vec(want_s.clone(), (rows, l.groups_per_row()), &dev).unwrap();
        let got = unpack_4bit_symmetric(&pt, &st, (rows, cols), g).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let want: Vec<f32> = Quantizer::new(g).unpack_to_vec(&want_p, &want_s, rows, cols).unwrap();
        prop_assert_eq!(bits(&got), bits(&want));
        // Straight into narrower (and wider) dtypes: the f32 values rounded
        // (or widened) as `half` and `as f64` do.
        let to = |dtype| unpack_4bit_symmetric_to(&pt, &st, (rows, cols), g, dtype).unwrap().flatten_all().unwrap();
        let got = to(candle_core::DType::F16).to_vec1::<f16>().unwrap();
        prop_assert_eq!(got.iter().map(|h| h.to_bits()).collect::<Vec<_>>(), want.iter().map(|&w| f16::from_f32(w).to_bits()).collect::<Vec<_>>());
        let got = to(candle_core::DType::BF16).to_vec1::<bf16>().unwrap();
        prop_assert_eq!(got.iter().map(|h| h.to_bits()).collect::<Vec<_>>(), want.iter().map(|&w| bf16::from_f32(w).to_bits()).collect::<Vec<_>>());
        let got = to(candle_core::DType::F64).to_vec1::<f64>().unwrap();
        prop_assert_eq!(got.iter().map(|d| d.to_bits()).collect::<Vec<_>>(), want.iter().map(|&w| (w as f64).to_bits()).collect::<Vec<_>>());
        prop_assert!(unpack_4bit_symmetric_to(&pt, &st, (rows, cols), g, candle_core::DType::U8).is_err());
    }
}
