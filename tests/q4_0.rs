//! GGML Q4_0 interop: quantize against golden blocks from an independent
//! Python reference and against candle-core's `BlockQ4_0::from_float`;
//! import against candle's dequantization; export round trips; the report;
//! and the C entry points against the slice API, refusing bad input
//! without writing.

use candle_core::quantized::k_quants::{BlockQ4_0, GgmlType};
use cortex_q4::ffi::{
    cq4_kernel, cq4_options_default, cq4_q4_0_export, cq4_q4_0_import, cq4_q4_0_quantize_f32,
    cq4_q4_0_quantize_f32_ex, cq4_q4_0_report, cq4_status,
};
use cortex_q4::q4_0::{export, import, quantize, ExportReport};
use cortex_q4::{Error, Kernel, Options, Quantizer, Q4_0_BLOCK_BYTES};
use half::f16;
use proptest::prelude::*;

struct Golden {
    name: String,
    src: Vec<f32>,
    blocks: Vec<u8>,
}

fn golden() -> Vec<Golden> {
    let text = include_str!("golden/q4_0.txt");
    let mut cases = Vec::new();
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    while let Some(line) = lines.next() {
        let name = line.strip_prefix("case ").expect("case line").to_string();
        let src = lines.next().unwrap().strip_prefix("src ").unwrap();
        let src = src
            .split(' ')
            .map(|h| f32::from_bits(u32::from_str_radix(h, 16).unwrap()))
            .collect();
        let hex = lines.next().unwrap().strip_prefix("blocks ").unwrap();
        let blocks = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        cases.push(Golden { name, src, blocks });
    }
    cases
}

/// candle's blocks are `#[repr(C)] { d: f16, qs: [u8; 16] }`, 18 bytes
/// (asserted by candle), the same bytes as GGML's on little-endian targets.
fn candle_bytes(blocks: &[BlockQ4_0]) -> &[u8] {
    assert_eq!(std::mem::size_of::<BlockQ4_0>(), Q4_0_BLOCK_BYTES);
    // SAFETY: the slice covers `len * 18` initialized bytes (no padding).
    unsafe { std::slice::from_raw_parts(blocks.as_ptr().cast(), std::mem::size_of_val(blocks)) }
}

fn to_candle(blocks: &[u8]) -> Vec<BlockQ4_0> {
    let mut out = vec![BlockQ4_0::zeros(); blocks.len() / Q4_0_BLOCK_BYTES];
    // SAFETY: as in `candle_bytes`, for writes; every bit pattern is a valid
    // f16 and u8.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(
            out.as_mut_ptr().cast::<u8>(),
            std::mem::size_of_val(&out[..]),
        )
    };
    bytes.copy_from_slice(blocks);
    out
}

fn quantized(src: &[f32], rows: usize, cols: usize) -> Vec<u8> {
    let mut blocks = vec![0u8; rows * cols / 32 * Q4_0_BLOCK_BYTES];
    quantize(&Options::default(), src, rows, cols, &mut blocks).unwrap();
    blocks
}

fn imported(blocks: &[u8], rows: usize, cols: usize) -> (Vec<u8>, Vec<f32>) {
    let (mut packed, mut scales) = (vec![0u8; rows * cols / 2], vec![0f32; rows * cols / 32]);
    import(blocks, rows, cols, &mut packed, &mut scales).unwrap();
    (packed, scales)
}

#[test]
fn quantize_matches_the_golden_blocks() {
    let cases = golden();
    assert!(cases.len() >= 10);
    for case in cases {
        let got = quantized(&case.src, 1, case.src.len());
        assert_eq!(got, case.blocks, "{}", case.name);
    }
}

/// Weights as engines hold them: normal values across many magnitudes.
fn weights(blocks: usize) -> impl Strategy<Value = Vec<f32>> {
    proptest::collection::vec((-1.0e3f32..1.0e3, -20i32..20), blocks * 32).prop_map(|v| {
        v.into_iter()
            .map(|(x, e)| x * 2f32.powi(e))
            .collect::<Vec<_>>()
    })
}

fn any_blocks(n: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), n * Q4_0_BLOCK_BYTES)
}

proptest! {
    /// candle's port of the same reference agrees wherever `1 / d` is
    /// finite (it saturates where C truncates, so not beyond).
    #[test]
    fn quantize_matches_candle(x in weights(6), rows in 1usize..4) {
        let cols = x.len() / rows / 32 * 32;
        let x = &x[..rows * cols];
        let mut theirs = vec![BlockQ4_0::zeros(); x.len() / 32];
        BlockQ4_0::from_float(x, &mut theirs);
        prop_assert_eq!(&quantized(x, rows, cols)[..], candle_bytes(&theirs));
    }

    /// Every kernel and thread count quantizes byte for byte as the scalar
    /// reference, on any bit pattern (NaN, Inf, subnormals, ties of the
    /// largest magnitude) and on weights.
    #[test]
    fn kernels_quantize_as_the_reference(
        bits in proptest::collection::vec(any::<u32>(), 4 * 32),
        weights in weights(4),
        ties in proptest::collection::vec(prop::sample::select(vec![0.0f32, -0.0, 2.0, -2.0, 1.0]), 4 * 32),
        threads in 0usize..3,
    ) {
        let inputs = [bits.iter().map(|&b| f32::from_bits(b)).collect::<Vec<_>>(), weights, ties];
        for x in inputs {
            let reference = Options::default().with_kernel(Kernel::Scalar);
            let mut want = vec![0u8; 4 * Q4_0_BLOCK_BYTES];
            quantize(&reference, &x, 2, 64, &mut want).unwrap();
            for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
                let opts = Options::default().with_kernel(kernel).with_threads(threads);
                let mut got = vec![0u8; 4 * Q4_0_BLOCK_BYTES];
                quantize(&opts, &x, 2, 64, &mut got).unwrap();
                prop_assert_eq!(&got, &want, "{}", kernel.name());
            }
        }
    }

    /// Imported blocks decode, through this library's unpack, to the bits
    /// candle's Q4_0 dequantization gives, for any block bytes (NaN, Inf,
    /// subnormal and negative scales included).
    #[test]
    fn import_decodes_as_ggml(blocks in any_blocks(4)) {
        let (packed, scales) = imported(&blocks, 2, 64);
        let ours: Vec<f32> = Quantizer::new(32).unpack_to_vec(&packed, &scales, 2, 64).unwrap();
        let mut theirs = vec![0f32; 128];
        BlockQ4_0::to_float(&to_candle(&blocks), &mut theirs);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&ours), bits(&theirs));
    }

    /// Export gives back the blocks that were imported, reporting nothing
    /// lost (an f16 scale is exact in f32); a NaN scale comes back as a
    /// NaN, quieted on import as GGML's own conversion quiets it.
    #[test]
    fn export_inverts_import(blocks in any_blocks(3)) {
        let (packed, scales) = imported(&blocks, 1, 96);
        let mut back = vec![0u8; blocks.len()];
        let report = export(&packed, &scales, 1, 96, &mut back).unwrap();
        prop_assert_eq!(report, ExportReport { scales: 3, ..ExportReport::default() });
        for (b, a) in back.chunks_exact(Q4_0_BLOCK_BYTES).zip(blocks.chunks_exact(Q4_0_BLOCK_BYTES)) {
            let d = |x: &[u8]| f16::from_le_bytes([x[0], x[1]]);
            if d(a).is_nan() {
                prop_assert!(d(b).is_nan());
                prop_assert_eq!(&b[2..], &a[2..]);
            } else {
                prop_assert_eq!(b, a);
            }
        }
    }
}

#[test]
fn export_reports_scales_f16_cannot_hold() {
    let scales = [
        0.5f32,
        0.1,
        1.0e6,
        -1.0e-6,
        1.0e-9,
        f32::INFINITY,
        65504.0,
        3.0e-5,
    ];
    // Element e of each group holds nibble e % 16.
    let packed: Vec<u8> = (0..scales.len() * 16)
        .map(|i| ((2 * i % 16) | ((2 * i + 1) % 16) << 4) as u8)
        .collect();
    let mut blocks = vec![0u8; scales.len() * Q4_0_BLOCK_BYTES];
    let report = export(&packed, &scales, 1, 32 * scales.len(), &mut blocks).unwrap();
    // 0.5, Inf and 65504 are exact; 0.1 rounds; 1e6 overflows; -1e-6,
    // 1e-9 (flushed to zero) and 3e-5 lose bits as f16 subnormals.
    assert_eq!(
        report,
        ExportReport {
            scales: 8,
            overflowed: 1,
            subnormal_loss: 3,
            rounded: 1
        }
    );
    // The C entry point reports the same counts, field by field.
    let mut c_blocks = vec![0u8; blocks.len()];
    let mut c_report = cq4_q4_0_report::default();
    // SAFETY: every pointer is valid for its declared length; `c_report`
    // for one write.
    let status = unsafe {
        cq4_q4_0_export(
            packed.as_ptr(),
            packed.len(),
            scales.as_ptr(),
            scales.len(),
            1,
            32 * scales.len(),
            c_blocks.as_mut_ptr(),
            c_blocks.len(),
            &mut c_report,
        )
    };
    assert_eq!(status, cq4_status::CQ4_OK);
    assert_eq!(c_blocks, blocks);
    assert_eq!(
        c_report,
        cq4_q4_0_report {
            scales: 8,
            overflowed: 1,
            subnormal_loss: 3,
            rounded: 1
        }
    );
    let d = |i: usize| f16::from_le_bytes([blocks[18 * i], blocks[18 * i + 1]]);
    assert_eq!(d(2), f16::INFINITY);
    assert_eq!(d(4), f16::ZERO);
    // Q4_0 puts element j in the low nibble of byte j and element j + 16
    // in the high nibble: j and (j + 16) % 16 = j.
    let want: Vec<u8> = (0..16).map(|j| j * 0x11).collect();
    for block in blocks.chunks_exact(Q4_0_BLOCK_BYTES) {
        assert_eq!(&block[2..], &want[..]);
    }
}

#[test]
fn large_matrices_split_over_threads_give_the_same_blocks() {
    // Big enough that several tasks really run on the pool.
    let (rows, cols) = (300, 1024);
    let src: Vec<f32> = (0..rows * cols)
        .map(|i| ((i * 7919) % 2001) as f32 / 100.0 - 10.0)
        .collect();
    let reference = Options::default()
        .with_kernel(Kernel::Scalar)
        .with_threads(1);
    let mut want = vec![0u8; rows * cols / 32 * Q4_0_BLOCK_BYTES];
    quantize(&reference, &src, rows, cols, &mut want).unwrap();
    for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
        for threads in [0, 2, 3, 7] {
            let opts = Options::default().with_kernel(kernel).with_threads(threads);
            let mut got = vec![0xA5u8; want.len()];
            quantize(&opts, &src, rows, cols, &mut got).unwrap();
            assert_eq!(got, want, "{} threads {threads}", kernel.name());
        }
    }
}

#[test]
fn bad_shapes_and_short_buffers_are_refused_without_writing() {
    let mut blocks = vec![0xA5u8; 2 * Q4_0_BLOCK_BYTES];
    let src = vec![1f32; 64];
    assert_eq!(
        quantize(&Options::default(), &src, 1, 48, &mut blocks),
        Err(Error::ColsNotWholeBlocks {
            cols: 48,
            block: 32
        })
    );
    assert!(matches!(
        quantize(&Options::default(), &src, 2, 64, &mut blocks),
        Err(Error::InputTooShort { .. })
    ));
    assert!(matches!(
        quantize(&Options::default(), &src, 1, 64, &mut blocks[..35]),
        Err(Error::OutputTooSmall { .. })
    ));
    assert!(blocks.iter().all(|&b| b == 0xA5));
    let (mut packed, mut scales) = (vec![0xA5u8; 32], vec![7f32; 2]);
    assert!(matches!(
        import(&blocks[..35], 1, 64, &mut packed, &mut scales),
        Err(Error::InputTooShort { .. })
    ));
    assert!(matches!(
        import(&blocks, 1, 64, &mut packed, &mut scales[..1]),
        Err(Error::OutputTooSmall { .. })
    ));
    assert!(packed.iter().all(|&b| b == 0xA5) && scales == [7.0, 7.0]);
}

fn status_of<T>(r: &Result<T, Error>) -> cq4_status {
    r.as_ref()
        .map_or_else(|&e| cq4_status::from(e), |_| cq4_status::CQ4_OK)
}

proptest! {
    /// The C functions return the slice API's verdict and write what it
    /// writes; on error, nothing.
    #[test]
    fn c_entry_points_follow_the_slice_api(
        rows in 0usize..3,
        cols in prop::sample::select(vec![0usize, 16, 32, 48, 64]),
        lens in (0usize..80, 0usize..40, 0usize..4, 0usize..80),
        x in weights(4),
    ) {
        let (src_len, packed_len, scales_len, blocks_len) = lens;
        let src = &x[..src_len.min(x.len())];
        let mut want = vec![0xA5u8; blocks_len];
        let verdict = quantize(&Options::default(), src, rows, cols, &mut want);
        let mut got = vec![0xA5u8; blocks_len];
        // SAFETY: each pointer is valid for its declared length.
        let status = unsafe {
            cq4_q4_0_quantize_f32(src.as_ptr(), src.len(), rows, cols, got.as_mut_ptr(), got.len())
        };
        prop_assert_eq!(status, status_of(&verdict));
        prop_assert_eq!(&got, &want);

        let (mut want_p, mut want_s) = (vec![0xA5u8; packed_len], vec![-1f32; scales_len]);
        let verdict = import(&got, rows, cols, &mut want_p, &mut want_s);
        let (mut p, mut s) = (vec![0xA5u8; packed_len], vec![-1f32; scales_len]);
        // SAFETY: as above.
        let status = unsafe {
            cq4_q4_0_import(got.as_ptr(), got.len(), rows, cols, p.as_mut_ptr(), p.len(), s.as_mut_ptr(), s.len())
        };
        prop_assert_eq!(status, status_of(&verdict));
        prop_assert_eq!((&p, &s), (&want_p, &want_s));

        let mut want_b = vec![0xA5u8; blocks_len];
        let verdict = export(&p, &s, rows, cols, &mut want_b);
        let mut b = vec![0xA5u8; blocks_len];
        let mut report = cq4_q4_0_report { scales: 99, ..Default::default() };
        // SAFETY: as above; `report` is valid for one write.
        let status = unsafe {
            cq4_q4_0_export(p.as_ptr(), p.len(), s.as_ptr(), s.len(), rows, cols, b.as_mut_ptr(), b.len(), &mut report)
        };
        prop_assert_eq!(status, status_of(&verdict));
        prop_assert_eq!(&b, &want_b);
        match verdict {
            Ok(r) => prop_assert_eq!(report.scales, r.scales),
            Err(_) => prop_assert_eq!(report.scales, 99),
        }
    }
}

#[test]
fn c_entry_points_refuse_null_pointers() {
    let (mut packed, mut scales, mut blocks) = ([0u8; 16], [0f32; 1], [0u8; 18]);
    let null_u8 = std::ptr::null_mut::<u8>();
    // SAFETY: every non-null pointer is valid for its declared length.
    unsafe {
        assert_eq!(
            cq4_q4_0_import(
                null_u8,
                18,
                1,
                32,
                packed.as_mut_ptr(),
                16,
                scales.as_mut_ptr(),
                1
            ),
            cq4_status::CQ4_ERR_NULL_POINTER
        );
        assert_eq!(
            cq4_q4_0_quantize_f32(std::ptr::null(), 32, 1, 32, blocks.as_mut_ptr(), 18),
            cq4_status::CQ4_ERR_NULL_POINTER
        );
        // The report is optional.
        assert_eq!(
            cq4_q4_0_export(
                packed.as_ptr(),
                16,
                scales.as_ptr(),
                1,
                1,
                32,
                blocks.as_mut_ptr(),
                18,
                std::ptr::null_mut()
            ),
            cq4_status::CQ4_OK
        );
    }
}

#[test]
fn c_quantize_with_options_gives_the_same_bytes() {
    let x: Vec<f32> = (0..4 * 256)
        .map(|i| ((i * 53 % 211) as f32 - 105.0) / 13.0)
        .collect();
    let want = quantized(&x, 4, 256);
    let run = |kernel: u32, threads: u32| {
        let mut opts = cq4_options_default();
        opts.kernel = kernel;
        opts.threads = threads;
        let mut got = vec![0xA5u8; want.len()];
        // SAFETY: every pointer is valid for its declared length.
        let status = unsafe {
            cq4_q4_0_quantize_f32_ex(
                x.as_ptr(),
                x.len(),
                4,
                256,
                got.as_mut_ptr(),
                got.len(),
                &opts,
            )
        };
        (status, got)
    };
    for (kernel, threads) in [
        (cq4_kernel::CQ4_KERNEL_SCALAR, 0),
        (cq4_kernel::CQ4_KERNEL_AUTO, 2),
    ] {
        assert_eq!(
            run(kernel as u32, threads),
            (cq4_status::CQ4_OK, want.clone())
        );
    }
    let (status, got) = run(77, 1);
    assert_eq!(status, cq4_status::CQ4_ERR_BAD_OPTIONS);
    assert!(got.iter().all(|&b| b == 0xA5));
}
