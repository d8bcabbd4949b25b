//! Products on the prepared form: int8 and exact outputs against models
//! of their definitions written here from the documentation (bit for bit,
//! on random and adversarial bytes, scales and activations), every kernel,
//! thread count and row split; the exact bound; the prepared bytes and
//! their checks.

mod common;

use cortex_q4::{
    Buffer, Error, Int8Activations, Int8ActivationsView, Kernel, Layout, Options, PackedMatrix,
    Precision, PreparedMatrix, PreparedView, Quantizer, PREPARED_HEADER_BYTES,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

fn supported() -> Vec<Kernel> {
    Kernel::ALL
        .into_iter()
        .filter(|k| k.is_supported())
        .collect()
}

/// The bits of each value, every NaN as one (payloads are not specified).
fn bits(v: &[f32]) -> Vec<u32> {
    v.iter()
        .map(|f| if f.is_nan() { u32::MAX } else { f.to_bits() })
        .collect()
}

const PRECISIONS: [Precision; 2] = [Precision::Int8, Precision::Exact];

#[derive(Debug, Clone)]
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

    fn prepared(&self) -> PreparedMatrix {
        PreparedMatrix::new(&self.matrix(), &Options::default()).unwrap()
    }

    /// The nibble of row `r`, column `c`, read from the packed bytes as
    /// the format defines them.
    fn nibble(&self, r: usize, c: usize) -> i32 {
        let (k, i) = (c / self.g, c % self.g);
        let row_bytes = self.cols.div_ceil(self.g) * self.g.div_ceil(2);
        let byte = self.packed[r * row_bytes + k * self.g.div_ceil(2) + i / 2];
        (if i % 2 == 0 { byte & 15 } else { byte >> 4 }) as i32
    }

    /// The int8 product as documented: activations quantized per group
    /// (`scale = max |x| / 127`, `q = round(x / scale)` half away from 0,
    /// NaN scale and zeros for a group holding NaN or an infinity), then
    /// per output one chain over the groups in order, `acc = fma(dot,
    /// clamp(w_scale * x_scale, -MAX, MAX), acc)` from +0.
    fn model(&self) -> Vec<f32> {
        let groups = self.cols.div_ceil(self.g);
        let mut y = vec![0f32; self.batch * self.rows];
        for b in 0..self.batch {
            let x = &self.x[b * self.cols..(b + 1) * self.cols];
            let mut q = vec![0i32; self.cols];
            let mut x_scales = vec![0f32; groups];
            for (k, x_scale) in x_scales.iter_mut().enumerate() {
                let cols = k * self.g..((k + 1) * self.g).min(self.cols);
                let group = &x[cols.clone()];
                if group.iter().any(|v| !v.is_finite()) {
                    *x_scale = f32::NAN;
                    continue;
                }
                let scale = group.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
                *x_scale = scale;
                if scale > 0.0 {
                    for c in cols {
                        q[c] = (x[c] / scale).round().clamp(-127.0, 127.0) as i32;
                    }
                }
            }
            for r in 0..self.rows {
                let mut acc = 0f32;
                for (k, &x_scale) in x_scales.iter().enumerate() {
                    let cols = k * self.g..((k + 1) * self.g).min(self.cols);
                    let dot: i32 = cols.map(|c| (self.nibble(r, c) - 8) * q[c]).sum();
                    let s = (self.scales[r * groups + k] * x_scale).clamp(-f32::MAX, f32::MAX);
                    acc = (dot as f32).mul_add(s, acc);
                }
                y[b * self.rows + r] = acc;
            }
        }
        y
    }

    /// The weights, unpacked as the format defines them.
    fn weights(&self) -> Vec<f32> {
        Quantizer::new(self.g)
            .unpack_to_vec(&self.packed, &self.scales, self.rows, self.cols)
            .unwrap()
    }

    /// The exact product as documented: leaves of the largest power of two
    /// at most sqrt(cols) columns, `acc = fma(w, x, acc)` from +0 in each,
    /// `total += acc` leaf after leaf from +0.
    fn exact_model(&self) -> Vec<f32> {
        let w = self.weights();
        let leaf = 1usize << self.cols.isqrt().max(1).ilog2();
        let mut y = vec![0f32; self.batch * self.rows];
        for b in 0..self.batch {
            for r in 0..self.rows {
                let mut total = 0f32;
                for start in (0..self.cols).step_by(leaf) {
                    let mut acc = 0f32;
                    for c in start..(start + leaf).min(self.cols) {
                        acc = w[r * self.cols + c].mul_add(self.x[b * self.cols + c], acc);
                    }
                    total += acc;
                }
                y[b * self.rows + r] = total;
            }
        }
        y
    }

    fn want(&self, precision: Precision) -> Vec<u32> {
        bits(&match precision {
            Precision::Int8 => self.model(),
            _ => self.exact_model(),
        })
    }

    fn run(
        &self,
        prepared: &PreparedMatrix,
        kernel: Kernel,
        threads: usize,
        precision: Precision,
    ) -> Vec<f32> {
        let opts = Options::default().with_kernel(kernel).with_threads(threads);
        let mut y = vec![f32::NAN; self.batch * self.rows];
        prepared
            .matmul(&opts, &self.x, self.batch, precision, &mut y)
            .unwrap();
        y
    }

    /// The first kernel and precision whose bits differ from the models',
    /// on `threads`; `None` when every one matches.
    fn mismatch(&self, prepared: &PreparedMatrix, threads: usize) -> Option<String> {
        PRECISIONS.into_iter().find_map(|precision| {
            let want = self.want(precision);
            supported().into_iter().find_map(|kernel| {
                let got = bits(&self.run(prepared, kernel, threads, precision));
                (got != want).then(|| format!("{} {precision:?}", kernel.name()))
            })
        })
    }
}

/// Scales: ordinary, negative, tiny, huge (products that overflow), and
/// now and then a non-finite one.
fn scale() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => -0.5f32..0.5,
        1 => prop::sample::select(vec![0.0f32, -0.0, 1e-40, 3e38, -3e38, 1e30]),
        1 => prop::sample::select(vec![f32::INFINITY, f32::NAN]),
    ]
}

/// Activations: ordinary, large (scale products that overflow against
/// large weight scales), now and then a non-finite one.
fn activation() -> impl Strategy<Value = f32> {
    prop_oneof![
        30 => -3.0f32..3.0,
        2 => -1e11f32..1e11,
        1 => prop::sample::select(vec![0.0f32, 3e38, f32::INFINITY, f32::NAN]),
    ]
}

fn case_with(batch: impl Strategy<Value = usize>, special: bool) -> impl Strategy<Value = Case> {
    let g = prop_oneof![
        3 => prop::sample::select(vec![8usize, 16, 32, 48, 64, 128, 256]),
        1 => 1usize..40,
    ];
    // Rows around whole panels of 16, and a few panels.
    let rows = prop_oneof![3 => 1usize..20, 1 => 30usize..50];
    (rows, 1usize..300, g, batch).prop_flat_map(move |(rows, cols, g, batch)| {
        let layout = Layout::new(rows, cols, g).unwrap();
        let (scales, x) = if special {
            (
                proptest::collection::vec(scale(), layout.scales_len()).boxed(),
                proptest::collection::vec(activation(), batch * cols).boxed(),
            )
        } else {
            (
                proptest::collection::vec(-0.5f32..0.5, layout.scales_len()).boxed(),
                proptest::collection::vec(-3.0f32..3.0, batch * cols).boxed(),
            )
        };
        (
            proptest::collection::vec(any::<u8>(), layout.packed_len()),
            scales,
            x,
        )
            .prop_map(move |(packed, scales, x)| Case {
                rows,
                cols,
                g,
                batch,
                packed,
                scales,
                x,
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::proptest_cases(64)))]

    /// Every kernel gives the models' bits, on any packed bytes (padding
    /// nibbles included) and ordinary values.
    #[test]
    fn products_match_their_definitions(c in case_with(1usize..70, false)) {
        let prepared = c.prepared();
        prop_assert_eq!(c.mismatch(&prepared, 1), None);
    }

    /// The same with overflowing scale products, non-finite scales and
    /// activations: int8 holds the products, both give NaN where the
    /// definitions say.
    #[test]
    fn products_match_their_definitions_on_special_values(c in case_with(1usize..20, true)) {
        let prepared = c.prepared();
        prop_assert_eq!(c.mismatch(&prepared, 1), None);
    }

    /// exact: within the header's bound of an f64 product of the unpacked
    /// weights, `(4 sqrt(cols) + 4) 2^-24 sum |x w| + cols 2^-149`.
    #[test]
    fn exact_is_within_its_bound(c in case_with(1usize..10, false)) {
        let prepared = c.prepared();
        let w = c.weights();
        let bound = (4.0 * (c.cols as f64).sqrt() + 4.0) / (1u64 << 24) as f64;
        let y = c.run(&prepared, Kernel::auto(), 1, Precision::Exact);
        for b in 0..c.batch {
            for r in 0..c.rows {
                let terms = (0..c.cols).map(|i| c.x[b * c.cols + i] as f64 * w[r * c.cols + i] as f64);
                let (sum, abs) = terms.fold((0.0, 0.0), |(s, a), t| (s + t, a + t.abs()));
                let got = y[b * c.rows + r] as f64;
                prop_assert!((got - sum).abs() <= bound * abs + c.cols as f64 * common::SUBNORMAL, "y[{b}, {r}] = {got}, want {sum}");
            }
        }
    }

    /// Threads and row splits (any cut, into one strided output) give the
    /// same bits.
    #[test]
    fn splits_do_not_change_results(
        c in case_with(1usize..20, false),
        cut in 0usize..50,
        threads in 0usize..4,
    ) {
        let prepared = c.prepared();
        let cut = cut.min(c.rows);
        for (kernel, precision) in supported().into_iter().flat_map(|k| PRECISIONS.map(|p| (k, p))) {
            let whole = c.run(&prepared, kernel, 1, precision);
            prop_assert_eq!(bits(&c.run(&prepared, kernel, threads, precision)), bits(&whole));
            let opts = Options::default().with_kernel(kernel).with_threads(threads);
            let mut y = vec![f32::NAN; c.batch * c.rows];
            prepared.matmul_rows(&opts, &c.x, c.batch, precision, 0..cut, &mut y, c.rows).unwrap();
            prepared.matmul_rows(&opts, &c.x, c.batch, precision, cut..c.rows, &mut y[cut..], c.rows).unwrap();
            prop_assert_eq!(bits(&y), bits(&whole), "{} {:?} cut {}", kernel.name(), precision, cut);
        }
    }

    /// Activations quantized once give every row range the bits of the
    /// whole int8 product, with every kernel; quantizing into caller
    /// memory writes the same bytes, and exactly `size` of them.
    #[test]
    fn activations_quantized_once_give_the_same_bits(
        c in case_with(1usize..20, true),
        cut in 0usize..50,
    ) {
        let prepared = c.prepared();
        let cut = cut.min(c.rows);
        for kernel in supported() {
            let opts = Options::default().with_kernel(kernel);
            let acts = Int8Activations::new(&opts, &c.x, c.batch, c.cols, c.g).unwrap();
            let size = Int8Activations::size(c.batch, c.cols, c.g).unwrap();
            let mut out = vec![0xA5u8; size + 4];
            Int8Activations::quantize_into(&opts, &c.x, c.batch, c.cols, c.g, &mut out).unwrap();
            prop_assert_eq!(&out[..size], acts.as_bytes());
            prop_assert_eq!(&out[size..], &[0xA5u8; 4][..]);
            let view = Int8ActivationsView::from_bytes(&out).unwrap();
            let mut y = vec![f32::NAN; c.batch * c.rows];
            prepared.view().matmul_rows_int8(&opts, &view, 0..cut, &mut y, c.rows).unwrap();
            prepared.view().matmul_rows_int8(&opts, &view, cut..c.rows, &mut y[cut..], c.rows).unwrap();
            prop_assert_eq!(bits(&y), c.want(Precision::Int8), "{}", kernel.name());
        }
    }

    /// Preparing on any number of threads, into owned or caller memory,
    /// writes the same bytes, and exactly `size` of them.
    #[test]
    fn preparing_is_deterministic(c in case_with(1usize..2, false), threads in 0usize..4) {
        let prepared = c.prepared();
        let size = PreparedMatrix::size(c.matrix().layout()).unwrap();
        prop_assert_eq!(prepared.as_bytes().len(), size);
        let opts = Options::default().with_threads(threads);
        let mut out = vec![0xA5u8; size + 8];
        PreparedMatrix::prepare_into(&c.matrix(), &opts, &mut out).unwrap();
        prop_assert_eq!(&out[..size], prepared.as_bytes());
        prop_assert_eq!(&out[size..], &[0xA5u8; 8][..]);
        prop_assert_eq!(prepared.as_bytes().as_ptr() as usize % 64, 0);
    }
}

/// Every batch size from 1 to 70 (whole and ragged register tiles) on
/// matrices of ragged rows and groups, both precisions.
#[test]
fn every_batch_size_matches_its_definition() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for batch in 1..=70 {
        let c = case_with(Just(batch), false)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let prepared = c.prepared();
        assert_eq!(c.mismatch(&prepared, 0), None, "batch {batch}");
    }
}

/// Nibbles and activations at their extremes (weights all 7 or all -8,
/// values all +-127) over long groups: the integer sums at their largest,
/// which kernels that sum in narrow lanes must still hold exactly.
#[test]
fn extreme_values_match_their_definitions() {
    for (byte, sign) in [(0xFFu8, 1.0f32), (0x00, 1.0), (0x00, -1.0), (0x0F, -1.0)] {
        for (g, batch) in [(256, 3), (512, 2), (40, 1)] {
            let (rows, cols) = (20, 2 * g);
            let layout = Layout::new(rows, cols, g).unwrap();
            // Rows of one sign, alternating from row to row.
            let x = (0..batch * cols).map(|i| if (i / cols) % 2 == 0 { sign } else { -sign });
            let c = Case {
                rows,
                cols,
                g,
                batch,
                packed: vec![byte; layout.packed_len()],
                scales: vec![0.25; layout.scales_len()],
                x: x.collect(),
            };
            let prepared = c.prepared();
            assert_eq!(c.mismatch(&prepared, 0), None, "{byte:#x} {sign} g {g}");
        }
    }
}

/// A group whose integer dot is 0 adds 0 even where its scale product
/// overflows to infinity: the products are held to the finite range.
#[test]
fn overflowing_scale_products_add_nothing_where_the_dot_is_zero() {
    let (rows, cols, g) = (16, 64, 32);
    // Row r: group 0 all weights 0 (nibble 8) with scale 1e30, group 1
    // weights 1 (nibble 9) with scale 1.
    let mut packed = vec![0u8; rows * cols / 2];
    for row in packed.chunks_exact_mut(cols / 2) {
        row[..16].fill(0x88);
        row[16..].fill(0x99);
    }
    let scales: Vec<f32> = (0..rows).flat_map(|_| [1e30f32, 1.0]).collect();
    let m = PackedMatrix::new(&packed, &scales, rows, cols, g).unwrap();
    let prepared = PreparedMatrix::new(&m, &Options::default()).unwrap();
    // Activations 1e11 in group 0 (scale product 1e30 * 1e11 / 127
    // overflows), 1 in group 1.
    let x: Vec<f32> = (0..cols).map(|c| if c < g { 1e11 } else { 1.0 }).collect();
    for kernel in supported() {
        let mut y = vec![f32::NAN; rows];
        let opts = Options::default().with_kernel(kernel);
        prepared
            .matmul(&opts, &x, 1, Precision::Int8, &mut y)
            .unwrap();
        // Group 1: dot 32 * 127, scale 1 / 127.
        let want = (32.0 * 127.0f32) * (1.0 / 127.0);
        assert!(y.iter().all(|&v| v == want), "{}: {y:?}", kernel.name());
    }
}

#[test]
fn views_refuse_bytes_that_are_not_a_prepared_matrix() {
    let (packed, scales) = (vec![0x5Au8; 3 * 20], vec![0.5f32; 3 * 2]);
    let m = PackedMatrix::new(&packed, &scales, 3, 40, 20).unwrap();
    let prepared = PreparedMatrix::new(&m, &Options::default()).unwrap();
    let good = prepared.as_bytes().to_vec();
    assert_eq!(
        PreparedView::from_bytes(&good).unwrap().layout(),
        m.layout()
    );
    // Longer buffers are cut to the prepared size.
    let mut longer = good.clone();
    longer.extend([1, 2, 3]);
    assert!(PreparedView::from_bytes(&longer).is_ok());
    assert_eq!(
        PreparedView::from_bytes(&good[..good.len() - 1]).unwrap_err(),
        Error::InputTooShort {
            buffer: Buffer::Prepared,
            needed: good.len(),
            got: good.len() - 1
        }
    );
    let edits: [(usize, u8); 6] = [
        (0, b'X'),  // magic
        (8, 2),     // version
        (12, 1),    // reserved
        (16, 0xFF), // rows: the body length no longer matches
        (32, 0),    // group size 0
        (40, 0x77), // body length
    ];
    for (at, value) in edits {
        let mut bad = good.clone();
        bad[at] = value;
        assert_eq!(
            PreparedView::from_bytes(&bad).unwrap_err(),
            Error::BadPrepared,
            "byte {at}"
        );
    }
    for short in [0, 7, PREPARED_HEADER_BYTES - 1] {
        assert_eq!(
            PreparedView::from_bytes(&good[..short]).unwrap_err(),
            Error::BadPrepared
        );
    }
}

#[test]
fn products_check_their_buffers_like_the_unprepared_ones() {
    let (packed, scales) = (vec![0x5Au8; 4 * 16], vec![0.5f32; 4]);
    let m = PackedMatrix::new(&packed, &scales, 4, 32, 32).unwrap();
    let prepared = PreparedMatrix::new(&m, &Options::default()).unwrap();
    let x = vec![1f32; 2 * 32];
    let opts = Options::default();
    for (batch, y_len, rows, stride, x_len, precision) in [
        (2, 7, 0..4, 4, 64, Precision::Int8),
        (2, 8, 0..4, 4, 63, Precision::Exact),
        (2, 8, 3..5, 4, 64, Precision::Int8),
        (2, 8, 0..4, 3, 64, Precision::Exact),
    ] {
        let mut y = vec![f32::NAN; y_len];
        let want = m.matmul_rows(
            &opts,
            &x[..x_len],
            batch,
            precision,
            rows.clone(),
            &mut y,
            stride,
        );
        let got = prepared.matmul_rows(&opts, &x[..x_len], batch, precision, rows, &mut y, stride);
        assert!(want.is_err());
        assert_eq!(got, want);
        assert!(y.iter().all(|v| v.is_nan()), "a refused call wrote");
    }
}

#[test]
fn quantized_activations_are_checked_against_the_matrix() {
    let (packed, scales) = (vec![0x5Au8; 4 * 16], vec![0.5f32; 4]);
    let m = PackedMatrix::new(&packed, &scales, 4, 32, 32).unwrap();
    let prepared = PreparedMatrix::new(&m, &Options::default()).unwrap();
    let opts = Options::default();
    let x = vec![1f32; 2 * 32];
    let good = Int8Activations::new(&opts, &x, 2, 32, 32).unwrap();
    let mut y = vec![f32::NAN; 8];
    // Other columns, another group size.
    for (cols, g) in [(16, 32), (32, 16)] {
        let other = Int8Activations::new(&opts, &x, 2, cols, g).unwrap();
        let got = prepared
            .view()
            .matmul_rows_int8(&opts, &other.view(), 0..4, &mut y, 4);
        assert_eq!(got, Err(Error::BadActivations), "{cols} x {g}");
    }
    let bytes = good.as_bytes();
    assert_eq!(
        Int8ActivationsView::from_bytes(&bytes[..bytes.len() - 1]).unwrap_err(),
        Error::InputTooShort {
            buffer: Buffer::Activations,
            needed: bytes.len(),
            got: bytes.len() - 1
        }
    );
    for at in [0, 8, 16, 40] {
        let mut bad = bytes.to_vec();
        bad[at] ^= 0x40;
        assert_eq!(
            Int8ActivationsView::from_bytes(&bad).unwrap_err(),
            Error::BadActivations,
            "byte {at}"
        );
    }
    // A prepared matrix is not activations, nor the reverse.
    assert!(Int8ActivationsView::from_bytes(prepared.as_bytes()).is_err());
    assert!(PreparedView::from_bytes(bytes).is_err());
    let got = prepared
        .view()
        .matmul_rows_int8(&opts, &good.view(), 0..4, &mut y[..7], 4);
    assert!(matches!(got, Err(Error::OutputTooSmall { .. })));
    assert!(y.iter().all(|v| v.is_nan()), "a refused call wrote");
    prepared
        .view()
        .matmul_rows_int8(&opts, &good.view(), 0..4, &mut y, 4)
        .unwrap();
    assert_eq!(
        Int8Activations::size(2, 32, 0).unwrap_err(),
        Error::BadGroupSize { group_size: 0 }
    );
    assert_eq!(
        Int8Activations::size(usize::MAX, 2, 32).unwrap_err(),
        Error::SizeOverflow
    );
}

/// Rows long enough that a product runs in several blocks of groups (K
/// blocking) and several leaves of the exact sums: the same bits.
#[test]
fn long_rows_match_their_definitions() {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (rows, cols, g, batch) in [(17, 2500, 32, 9), (5, 3000, 8, 3), (3, 4100, 128, 2)] {
        let layout = Layout::new(rows, cols, g).unwrap();
        let c = Case {
            rows,
            cols,
            g,
            batch,
            packed: (0..layout.packed_len()).map(|_| next() as u8).collect(),
            scales: (0..layout.scales_len())
                .map(|_| (next() % 1000) as f32 / 1000.0 - 0.5)
                .collect(),
            x: (0..batch * cols)
                .map(|_| (next() % 6000) as f32 / 1000.0 - 3.0)
                .collect(),
        };
        let prepared = c.prepared();
        assert_eq!(c.mismatch(&prepared, 0), None, "{rows} x {cols}, g {g}");
    }
}

/// Matrices without rows or columns prepare to a header alone, on any
/// number of threads, and their products are empty sums.
#[test]
fn empty_matrices_prepare_and_multiply() {
    for (rows, cols) in [(0, 64), (5, 0), (1 << 21, 0)] {
        let m = PackedMatrix::new(&[], &[], rows, cols, 32).unwrap();
        let prepared = PreparedMatrix::new(&m, &Options::default().with_threads(0)).unwrap();
        assert_eq!(prepared.as_bytes().len(), PREPARED_HEADER_BYTES);
        let x = vec![1f32; 2 * cols];
        let mut y = vec![f32::NAN; 2 * rows];
        for precision in PRECISIONS {
            prepared
                .matmul(&Options::default(), &x, 2, precision, &mut y)
                .unwrap();
            assert!(y.iter().all(|&v| v == 0.0), "{rows} x {cols}");
        }
        let acts = Int8Activations::new(&Options::default(), &x, 2, cols, 32).unwrap();
        y.fill(f32::NAN);
        prepared
            .view()
            .matmul_rows_int8(&Options::default(), &acts.view(), 0..rows, &mut y, rows)
            .unwrap();
        assert!(y.iter().all(|&v| v == 0.0), "{rows} x {cols}");
    }
}

/// Without rows, activations are a header alone whatever their width, as
/// prepared matrices are.
#[test]
fn activations_without_rows_are_a_header_whatever_their_width() {
    let cols = usize::MAX / 8;
    assert_eq!(
        Int8Activations::size(0, cols, 1 << 20).unwrap(),
        PREPARED_HEADER_BYTES
    );
    let layout = Layout::new(0, cols, 1 << 20).unwrap();
    assert_eq!(
        PreparedMatrix::size(&layout).unwrap(),
        PREPARED_HEADER_BYTES
    );
}
