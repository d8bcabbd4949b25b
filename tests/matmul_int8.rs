//! Int8 products at the edges: activations and weight scales near the f32
//! range (no intermediate may overflow where the answer is finite), and
//! non-finite activations (every kernel this CPU runs, forced).

use cortex_q4::{Kernel, Options, PackedMatrix, Precision, Quantizer};

fn supported() -> Vec<Kernel> {
    Kernel::ALL
        .into_iter()
        .filter(|k| k.is_supported())
        .collect()
}

/// `w` (`[rows, cols]`) packed at `g`, times `x` (`[batch, cols]`), with
/// `kernel` in `precision`.
fn product(
    kernel: Kernel,
    precision: Precision,
    w: &[f32],
    x: &[f32],
    (rows, cols, g): (usize, usize, usize),
) -> Vec<f32> {
    let (packed, scales) = Quantizer::new(g)
        .pack_to_vec(w, rows, cols)
        .unwrap()
        .into_parts();
    product_packed(kernel, precision, &packed, &scales, x, (rows, cols, g))
}

fn product_packed(
    kernel: Kernel,
    precision: Precision,
    packed: &[u8],
    scales: &[f32],
    x: &[f32],
    (rows, cols, g): (usize, usize, usize),
) -> Vec<f32> {
    let batch = x.len() / cols;
    let m = PackedMatrix::new(packed, scales, rows, cols, g).unwrap();
    let mut y = vec![f32::NAN; batch * rows];
    let opts = Options::default().with_kernel(kernel);
    m.matmul(&opts, x, batch, precision, &mut y).unwrap();
    y
}

/// Group sizes that take every kernel's fast paths and fallbacks.
const GROUP_SIZES: [usize; 6] = [32, 64, 128, 256, 48, 16];

/// `|got - want| <= rel * |want|`, both finite.
fn close(got: f32, want: f64, rel: f64) -> bool {
    got.is_finite() && (got as f64 - want).abs() <= rel * want.abs()
}

#[test]
fn large_activations_do_not_overflow() {
    // The reported case: x_scale * 8 * sum(q) alone is past f32::MAX.
    let (rows, cols, g) = (1, 128, 32);
    let w = vec![1f32; cols];
    let mut x = vec![0f32; cols];
    x[..32].fill(3e36);
    for kernel in supported() {
        for precision in [Precision::Exact, Precision::Int8] {
            let y = product(kernel, precision, &w, &x, (rows, cols, g));
            assert!(
                close(y[0], 9.6e37, 1e-5),
                "{kernel:?} {precision:?}: {}",
                y[0]
            );
        }
    }
}

#[test]
fn activations_near_the_f32_range_do_not_overflow() {
    // Every group size and kernel path; activation rows whose groups are
    // whose values add to near f32::MAX / 2, weights of one sign and both, a
    // ragged tail.
    for g in GROUP_SIZES {
        for cols in [g, 128, 256, 512 + g / 2 * 2, 1024] {
            let rows = 3;
            let w: Vec<f32> = (0..rows * cols)
                .map(|i| match i / cols {
                    0 => 1.0,
                    1 => -1.0,
                    _ => [1.0, -0.5, 0.25, 0.75][i % 4],
                })
                .collect();
            let big = f32::MAX / 2.0 / cols as f32;
            let x: Vec<f32> = (0..cols)
                .map(|c| if c % 3 == 0 { big } else { big / 2.0 })
                .collect();
            let exact = product(Kernel::Scalar, Precision::Exact, &w, &x, (rows, cols, g));
            for kernel in supported() {
                let y = product(kernel, Precision::Int8, &w, &x, (rows, cols, g));
                for r in 0..rows {
                    assert!(
                        close(y[r], exact[r] as f64, 0.02),
                        "{kernel:?} g {g} cols {cols} row {r}: {} vs exact {}",
                        y[r],
                        exact[r]
                    );
                }
            }
        }
    }
}

#[test]
fn many_groups_of_large_terms_do_not_overflow() {
    // Each group's term is f32::MAX / 64; the terms alternate in
    // sign, so the answer is small, but the sums of u * q alone (u the
    // nibble, 0..=15) add to far more than f32::MAX.
    for g in [32, 64, 128] {
        let groups = 64;
        let cols = g * groups;
        let w: Vec<f32> = (0..cols)
            .map(|c| if (c / g) % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let unit = f32::MAX / 64.0 / g as f32;
        let x = vec![unit; cols];
        for kernel in supported() {
            let y = product(kernel, Precision::Int8, &w, &x, (1, cols, g));
            assert!(
                y[0].is_finite() && y[0].abs() <= unit * g as f32,
                "{kernel:?} g {g}: {}",
                y[0]
            );
        }
    }
}

#[test]
fn large_weight_scales_do_not_overflow() {
    // Weight scales near f32::MAX / 16 with small activations.
    let (rows, cols) = (2usize, 256usize);
    for g in GROUP_SIZES {
        let scale = f32::MAX / 16.0;
        let groups = cols.div_ceil(g);
        let packed: Vec<u8> = (0..rows * groups * g.div_ceil(2))
            .map(|i| [0x9Au8, 0x76, 0x88, 0xF0][i % 4])
            .collect();
        let scales = vec![scale; rows * groups];
        let x: Vec<f32> = (0..cols)
            .map(|c| 1.0 / 8192.0 / (1 + c % 5) as f32)
            .collect();
        let exact = product_packed(
            Kernel::Scalar,
            Precision::Exact,
            &packed,
            &scales,
            &x,
            (rows, cols, g),
        );
        for kernel in supported() {
            let y = product_packed(
                kernel,
                Precision::Int8,
                &packed,
                &scales,
                &x,
                (rows, cols, g),
            );
            for r in 0..rows {
                let slack = exact[r].abs() as f64 * 0.05 + scale as f64 * 1e-3;
                assert!(
                    y[r].is_finite() && (y[r] as f64 - exact[r] as f64).abs() <= slack,
                    "{kernel:?} g {g} row {r}: {} vs exact {}",
                    y[r],
                    exact[r]
                );
            }
        }
    }
}

#[test]
fn non_finite_activations_give_nan_in_the_rows_that_read_them() {
    // Three activation rows: the middle one holds one non-finite value, at
    // a column in the SIMD body or in the ragged tail; its outputs are NaN
    // (for every weight row, zero weights included), and the other rows'
    // outputs are what they are without it.
    let bad_values = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -f32::NAN];
    for g in GROUP_SIZES {
        let cols = 384 + g;
        let rows = 4;
        let w: Vec<f32> = (0..rows * cols)
            .map(|i| match i / cols {
                3 => 0.0,
                _ => ((i * 37) % 29) as f32 / 14.0 - 1.0,
            })
            .collect();
        let clean: Vec<f32> = (0..3 * cols)
            .map(|i| ((i * 53) % 41) as f32 / 20.0 - 1.0)
            .collect();
        for kernel in supported() {
            let want = product(kernel, Precision::Int8, &w, &clean, (rows, cols, g));
            for bad in bad_values {
                for c in [0, 5, 130, cols - 1] {
                    let mut x = clean.clone();
                    x[cols + c] = bad;
                    let y = product(kernel, Precision::Int8, &w, &x, (rows, cols, g));
                    for r in 0..rows {
                        let at = |b: usize| y[b * rows + r];
                        assert!(
                            at(1).is_nan(),
                            "{kernel:?} g {g} x[{c}] = {bad}, row {r}: {}",
                            at(1)
                        );
                        for b in [0, 2] {
                            assert_eq!(at(b).to_bits(), want[b * rows + r].to_bits());
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn exact_mode_also_propagates_non_finite_activations() {
    // The int8 rule follows exact mode's: NaN in, NaN out (infinities give
    // infinities or NaN there).
    let (rows, cols, g) = (1, 64, 32);
    let w = vec![0.5f32; cols];
    let mut x = vec![1f32; cols];
    x[3] = f32::NAN;
    for kernel in supported() {
        let y = product(kernel, Precision::Exact, &w, &x, (rows, cols, g));
        assert!(y[0].is_nan(), "{kernel:?}");
    }
}

#[test]
fn overflowing_scale_products_add_nothing_where_the_dot_is_zero() {
    // Weight scales of 1e30 (a caller's own scales) and activations of 1e11
    // in the groups whose weights are all 0: w_scale * x_scale is past
    // f32::MAX there, but those groups add exactly 0 in every precision;
    // the other groups (weights 1, activations 1) give the finite answer.
    let (rows, cols) = (2usize, 512usize);
    for g in GROUP_SIZES {
        let groups = cols.div_ceil(g);
        let bytes = g.div_ceil(2);
        // Even groups: every nibble 8 (weight 0); odd groups: 9 (weight 1,
        // the spare nibble of an odd g stays 8).
        let mut packed = vec![0x88u8; rows * groups * bytes];
        for r in 0..rows {
            for k in (1..groups).step_by(2) {
                for c in 0..g.min(cols - k * g) {
                    let byte = &mut packed[(r * groups + k) * bytes + c / 2];
                    *byte += if c % 2 == 0 { 0x01 } else { 0x10 };
                }
            }
        }
        let scales = vec![1e30f32; rows * groups];
        let x: Vec<f32> = (0..cols)
            .map(|c| if (c / g) % 2 == 0 { 1e11 } else { 1.0 })
            .collect();
        // Each odd group adds 1e30 per column it holds.
        let want: f64 = (0..cols).filter(|c| (c / g) % 2 == 1).count() as f64 * 1e30;
        for kernel in supported() {
            for precision in [Precision::Exact, Precision::Int8] {
                let y = product_packed(kernel, precision, &packed, &scales, &x, (rows, cols, g));
                for (r, &got) in y.iter().enumerate() {
                    assert!(
                        close(got, want, 1e-5),
                        "{kernel:?} {precision:?} g {g} row {r}: {got} vs {want}"
                    );
                }
            }
        }
    }
}
