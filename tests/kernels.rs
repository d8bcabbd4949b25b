//! Every kernel this CPU runs against the scalar reference, byte for byte,
//! on random and adversarial inputs, at every thread count.

mod common;

use cortex_q4::{scalar, Kernel, Layout, Options, Quantizer};
use proptest::prelude::*;

fn supported() -> Vec<Kernel> {
    Kernel::ALL
        .into_iter()
        .filter(|k| k.is_supported())
        .collect()
}

/// Group sizes with SIMD fast paths, and some without.
fn group_size() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => prop::sample::select(vec![4usize, 8, 16, 32, 48, 64, 128, 256]),
        1 => 1usize..40,
    ]
}

/// Values that stress rounding, NaN and Inf handling, relative to a scale.
fn adversarial(scale: f32) -> impl Strategy<Value = f32> {
    prop_oneof![
        4 => (-7i32..7).prop_map(move |k| (k as f32 + 0.5) * scale),
        2 => (-7i32..7).prop_map(move |k| f32::from_bits(((k as f32 + 0.5) * scale).to_bits() ^ 1)),
        1 => Just(0.49999997 * scale),
        1 => Just(-0.49999997 * scale),
        1 => Just(-0.0f32),
        1 => Just(f32::NAN),
        1 => Just(-f32::NAN),
        1 => Just(f32::INFINITY),
        1 => Just(f32::NEG_INFINITY),
        1 => Just(f32::MAX),
        1 => Just(1e-41f32),
        1 => any::<u32>().prop_map(f32::from_bits),
        6 => (-1.0f32..1.0).prop_map(move |v| v * 6.9 * scale),
    ]
}

/// Rows whose groups start with their largest element `m`, so that the
/// group's scale is known and `(k + 0.5) * scale` values are real ties.
fn matrix() -> impl Strategy<Value = (usize, usize, usize, Vec<f32>)> {
    (
        0usize..5,
        0usize..300,
        group_size(),
        0.001f32..100.0,
        any::<bool>(),
    )
        .prop_flat_map(|(rows, cols, g, m, negative)| {
            let m = if negative { -m } else { m };
            let scale = scalar::group_scale(&[m]);
            let values = proptest::collection::vec(adversarial(scale), rows * cols).prop_map(
                move |mut v| {
                    v.iter_mut().step_by(g).for_each(|first| *first = m);
                    v
                },
            );
            (Just(rows), Just(cols), Just(g), values)
        })
}

fn reference_pack(src: &[f32], l: &Layout) -> (Vec<u8>, Vec<u32>) {
    let mut packed = vec![0u8; l.packed_len()];
    let mut scales = vec![0f32; l.scales_len()];
    for r in 0..l.rows() {
        scalar::pack_row(
            &src[r * l.cols()..(r + 1) * l.cols()],
            l.group_size(),
            &mut packed[r * l.packed_row_bytes()..(r + 1) * l.packed_row_bytes()],
            &mut scales[r * l.groups_per_row()..(r + 1) * l.groups_per_row()],
        );
    }
    (packed, scales.iter().map(|s| s.to_bits()).collect())
}

fn reference_unpack(packed: &[u8], scales: &[f32], l: &Layout) -> Vec<u32> {
    let mut out = vec![0f32; l.elements()];
    for r in 0..l.rows() {
        scalar::unpack_row(
            &packed[r * l.packed_row_bytes()..(r + 1) * l.packed_row_bytes()],
            &scales[r * l.groups_per_row()..(r + 1) * l.groups_per_row()],
            l.group_size(),
            &mut out[r * l.cols()..(r + 1) * l.cols()],
        );
    }
    out.iter().map(|v| v.to_bits()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::proptest_cases(200)))]

    #[test]
    fn every_kernel_packs_like_the_reference((rows, cols, g, src) in matrix(), threads in 0usize..4) {
        let l = Layout::new(rows, cols, g).unwrap();
        let want = reference_pack(&src, &l);
        for kernel in supported() {
            let opts = Options::default().with_kernel(kernel).with_threads(threads);
            let (packed, scales) = Quantizer::new(g).with_options(opts).pack_to_vec(&src, rows, cols).unwrap().into_parts();
            prop_assert_eq!(&packed, &want.0, "{} bytes", kernel.name());
            let scales: Vec<u32> = scales.iter().map(|s| s.to_bits()).collect();
            prop_assert_eq!(&scales, &want.1, "{} scales", kernel.name());
        }
    }

    #[test]
    fn every_kernel_unpacks_like_the_reference(
        (rows, cols, g) in (0usize..5, 0usize..300, group_size()),
        bytes in proptest::collection::vec(any::<u8>(), 1..64),
        scales in proptest::collection::vec(prop_oneof![
            4 => -100.0f32..100.0,
            1 => Just(f32::NAN), 1 => Just(f32::INFINITY), 1 => Just(f32::NEG_INFINITY),
            1 => Just(-0.0f32), 1 => Just(f32::MAX), 1 => any::<u32>().prop_map(f32::from_bits),
        ], 1..16),
        threads in 0usize..4,
    ) {
        let l = Layout::new(rows, cols, g).unwrap();
        let packed: Vec<u8> = (0..l.packed_len()).map(|i| bytes[i % bytes.len()]).collect();
        let scales: Vec<f32> = (0..l.scales_len()).map(|i| scales[i % scales.len()]).collect();
        let want = reference_unpack(&packed, &scales, &l);
        for kernel in supported() {
            let opts = Options::default().with_kernel(kernel).with_threads(threads);
            let out: Vec<f32> = Quantizer::new(g).with_options(opts).unpack_to_vec(&packed, &scales, rows, cols).unwrap();
            let out: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
            prop_assert_eq!(&out, &want, "{}", kernel.name());
        }
    }
}

/// Outputs of 8 MiB and more are written with non-temporal stores: the
/// same bits, at any alignment, on any thread count, nothing written
/// around them.
#[test]
fn large_outputs_unpack_like_the_reference() {
    // 8.4 MB of f32; rows of 2050 floats start at every 8-byte step of a
    // cache line, and end in a ragged group.
    let (rows, cols, g) = (1025, 2050, 32);
    let l = Layout::new(rows, cols, g).unwrap();
    let packed: Vec<u8> = (0..l.packed_len())
        .map(|i| (i * 7919 % 251) as u8)
        .collect();
    let scales: Vec<f32> = (0..l.scales_len())
        .map(|i| (i % 1999) as f32 / 100.0 - 9.0)
        .collect();
    let want = reference_unpack(&packed, &scales, &l);
    let mut buffer = vec![0f32; l.elements() + 32];
    for kernel in supported() {
        for (threads, offset) in [(1, 0), (1, 5), (2, 3), (0, 16)] {
            buffer.fill(-1.5);
            let opts = Options::default().with_kernel(kernel).with_threads(threads);
            let dst = &mut buffer[offset..offset + l.elements()];
            Quantizer::new(g)
                .with_options(opts)
                .unpack(&packed, &scales, rows, cols, dst)
                .unwrap();
            let got: Vec<u32> = dst.iter().map(|v| v.to_bits()).collect();
            assert!(
                got == want,
                "{} threads {threads} offset {offset}",
                kernel.name()
            );
            let outside = buffer[..offset]
                .iter()
                .chain(&buffer[offset + l.elements()..]);
            assert!(
                outside.into_iter().all(|&v| v == -1.5),
                "{} wrote outside",
                kernel.name()
            );
        }
    }
}

#[test]
fn large_matrices_split_over_threads_give_the_same_bytes() {
    // Big enough that several tasks really run on the pool.
    let (rows, cols, g) = (300, 1000, 32);
    let src: Vec<f32> = (0..rows * cols)
        .map(|i| ((i * 7919) % 2001) as f32 / 100.0 - 10.0)
        .collect();
    let l = Layout::new(rows, cols, g).unwrap();
    let want = reference_pack(&src, &l);
    for kernel in supported() {
        for threads in [0, 1, 2, 3, 7] {
            let opts = Options::default().with_kernel(kernel).with_threads(threads);
            let (packed, scales) = Quantizer::new(g)
                .with_options(opts)
                .pack_to_vec(&src, rows, cols)
                .unwrap()
                .into_parts();
            assert_eq!(packed, want.0, "{} threads {threads}", kernel.name());
            assert_eq!(
                scales.iter().map(|s| s.to_bits()).collect::<Vec<_>>(),
                want.1
            );
            let out: Vec<f32> = Quantizer::new(g)
                .with_options(opts)
                .unpack_to_vec(&packed, &scales, rows, cols)
                .unwrap();
            assert_eq!(
                out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                reference_unpack(&packed, &scales, &l)
            );
        }
    }
}

#[test]
fn kernel_choice_is_checked() {
    assert!(Kernel::Scalar.is_supported());
    assert!(Kernel::auto().is_supported());
    for kernel in Kernel::ALL {
        assert_eq!(Kernel::from_name(kernel.name()), Some(kernel));
        let opts = Options::default().with_kernel(kernel);
        let result = Quantizer::new(32)
            .with_options(opts)
            .pack_to_vec(&[1.0f32; 32], 1, 32);
        if kernel.is_supported() {
            assert!(result.is_ok());
        } else {
            assert_eq!(result, Err(cortex_q4::Error::UnsupportedKernel { kernel }));
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        let avx512 = is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl");
        assert_eq!(Kernel::Avx512.is_supported(), avx512);
        if avx512 && std::env::var_os("CQ4_KERNEL").is_none() {
            assert_eq!(Kernel::auto(), Kernel::Avx512);
        }
    }
}
