//! Products: `cq4_matmul_f32`, `cq4_matmul_rows_f32`, `cq4_matmul_rows_f16`,
//! `cq4_matmul_rows_bf16` (the first input byte chooses). On success, for
//! every kernel this CPU runs: only `y[b * y_stride + (r - row_begin)]` is
//! written; exact products are within the header's bound of an f64
//! product of the unpacked weights, int8 ones within it plus the stated
//! activation rounding (both where every term is in the normal range);
//! rows holding NaN or Inf activations give non-finite outputs (NaN in
//! int8 mode); splitting the rows in two calls gives the same bits; and
//! the kernel of the first call gives its bits whatever the thread count.
//! f16 and bf16 activations give the bits of their exact f32 conversion.

#![no_main]

use cortex_q4::ffi::*;
use cq4_fuzz::arena::read_array;
use cq4_fuzz::run::{
    call_checked, forcing, kernels, matrix_buffers, place_matrix, prefix_range, read_back,
    same_bytes, unchanged_outside,
};
use cq4_fuzz::{model, reference, Arena, Buf, Input, Place};
use half::{bf16, f16};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| matmul(data));

#[derive(Clone, Copy, PartialEq, Eq)]
enum Elem {
    F32,
    F16,
    Bf16,
}

/// 2^-24, the unit roundoff of f32.
const U: f64 = 1.0 / (1u64 << 24) as f64;

fn matmul(data: &[u8]) {
    let mut input = Input::new(data);
    let entry = input.u8() % 4;
    let whole = entry == 0;
    let elem = [Elem::F32, Elem::F32, Elem::F16, Elem::Bf16][usize::from(entry)];
    let (rows, cols, g) = (input.count(), input.count(), input.group_size());
    let (packed, packed_len) = (input.place(), input.len());
    let (scales, scales_len) = (input.place(), input.len());
    let w_place = input.struct_place(size_of::<cq4_matrix>());
    let (x, x_len) = (input.place(), input.len());
    let (y, y_len) = (input.place(), input.len());
    let options_place = input.struct_place(size_of::<cq4_options>());
    let options = input.options();
    let batch = input.count();
    let precision = input.precision();
    let (row_begin, row_end, y_stride) = input.row_range(rows, whole);
    let width = row_end.wrapping_sub(row_begin);
    let split = input.u8();

    let layout = model::layout(rows, cols, g);
    let need = |f: fn(&model::Layout) -> usize| layout.as_ref().map_or(0, f);
    // Step 3 of the model: the layout, then the row range, stride and
    // other sizes.
    let sizes = layout
        .and_then(|l| model::product_sizes(l.rows, l.cols, batch, row_begin, row_end, y_stride));
    let (x_n, y_n) = *sizes.as_ref().unwrap_or(&(0, 0));
    let packed_len = packed.declare(packed_len.resolve(need(|l| l.packed_len)));
    let scales_len = scales.declare(scales_len.resolve(need(|l| l.scales_len)));
    let x_len = x.declare(x_len.resolve(x_n));
    let y_len = y.declare(y_len.resolve(y_n));

    let mut arena = Arena::default();
    let fill = input.u8();
    arena.fill(fill, input.rest());
    if let Place::At(off) = options_place {
        arena.write(off, options);
    }
    let matrix = place_matrix(
        &mut arena,
        w_place,
        (packed, packed_len),
        (scales, scales_len),
        (rows, cols, g),
    );
    let before = arena.bytes().to_vec();

    let x_buf = match elem {
        Elem::F32 => Buf::input::<f32>(arena.addr(x), x_len),
        _ => Buf::input::<u16>(arena.addr(x), x_len),
    };
    let mut bufs = [
        Buf::value_in::<cq4_matrix>(arena.addr(w_place)),
        x_buf.touching(x_n),
        Buf::output::<f32>(arena.addr(y), y_len).touching(y_n),
        Buf::value_in::<cq4_options>(arena.addr(options_place)).optional(),
        // The matrix's buffers, once `*w` is read.
        Buf::input::<u8>(0, 0).optional(),
        Buf::input::<f32>(0, 0).optional(),
    ];
    let verdict = (|| {
        model::pointers(&bufs[..4])?;
        [bufs[4], bufs[5]] = matrix_buffers(&before, w_place, matrix, layout.as_ref().ok());
        model::pointers(&bufs[4..])?;
        model::options(read_back(&before, options_place))?;
        model::precision(precision)?;
        sizes?;
        model::extents(&bufs)
    })();

    let p_w = arena.ptr::<cq4_matrix>(w_place).cast_const();
    let p_x = arena.ptr::<u8>(x).cast_const();
    let p_y = arena.ptr::<f32>(y);
    let p_options = arena.ptr::<cq4_options>(options_place).cast_const();
    // Rows `range` into `y_at` (`y_at_len` elements), `x` given as f32 at
    // `xf` when not None; `whole_call` for cq4_matmul_f32 itself.
    let call = |o: *const cq4_options,
                range: (usize, usize),
                y_at: *mut f32,
                y_at_len: usize,
                xf: Option<*const f32>,
                whole_call: bool| {
        let (rb, re) = range;
        // SAFETY: every pointer is NULL, dangling with length 0, inside the
        // arena or (`xf`) a live f32 copy of x; `safe` let through only
        // calls whose prefixes lie in the arena.
        unsafe {
            match (elem, xf) {
                (_, Some(xf)) => cq4_matmul_rows_f32(
                    p_w, xf, x_n, batch, precision, rb, re, y_at, y_at_len, y_stride, o,
                ),
                (Elem::F32, None) if whole_call => {
                    cq4_matmul_f32(p_w, p_x.cast(), x_len, batch, precision, y_at, y_at_len, o)
                }
                (Elem::F32, None) => cq4_matmul_rows_f32(
                    p_w,
                    p_x.cast(),
                    x_len,
                    batch,
                    precision,
                    rb,
                    re,
                    y_at,
                    y_at_len,
                    y_stride,
                    o,
                ),
                (Elem::F16, None) => cq4_matmul_rows_f16(
                    p_w,
                    p_x.cast(),
                    x_len,
                    batch,
                    precision,
                    rb,
                    re,
                    y_at,
                    y_at_len,
                    y_stride,
                    o,
                ),
                (Elem::Bf16, None) => cq4_matmul_rows_bf16(
                    p_w,
                    p_x.cast(),
                    x_len,
                    batch,
                    precision,
                    rb,
                    re,
                    y_at,
                    y_at_len,
                    y_stride,
                    o,
                ),
            }
        }
    };
    let first = || call(p_options, (row_begin, row_end), p_y, y_len, None, whole);
    if !call_checked(&arena, &before, verdict, &bufs, first) {
        return;
    }
    let Ok(l) = layout else { unreachable!() };
    let y_off = prefix_range(&arena, &bufs[2]).start;
    // The elements written: `width` of them every `y_stride`.
    let written: Vec<_> = (0..if width == 0 { 0 } else { batch })
        .map(|b| y_off + b * y_stride * 4..y_off + (b * y_stride + width) * 4)
        .collect();
    unchanged_outside(&before, arena.bytes(), &written);
    let after = arena.bytes().to_vec();
    if written.is_empty() {
        return;
    }

    let m: cq4_matrix = read_back(&before, w_place).unwrap_or(matrix);
    let at = |addr: usize| arena.offset(addr).unwrap_or(0);
    let packed_bytes: Vec<u8> = read_array(&before, at(m.packed.addr()), l.packed_len);
    let scale_values: Vec<f32> = read_array(&before, at(m.scales.addr()), l.scales_len);
    let xs: Vec<f32> = match elem {
        Elem::F32 => read_array(&before, at(bufs[1].addr), x_n),
        Elem::F16 => read_array(&before, at(bufs[1].addr), x_n)
            .into_iter()
            .map(|h| f16::from_bits(h).to_f32())
            .collect(),
        Elem::Bf16 => read_array(&before, at(bufs[1].addr), x_n)
            .into_iter()
            .map(|h| bf16::from_bits(h).to_f32())
            .collect(),
    };
    let bounds = Bounds::new(
        &packed_bytes,
        &scale_values,
        &l,
        &xs,
        batch,
        row_begin..row_end,
    );
    let first_kernel = match read_back::<cq4_options>(&before, options_place) {
        Some(o) if o.kernel != 0 => o.kernel,
        _ => cq4_kernel_auto(),
    };
    let mid = row_begin + usize::from(split) % (width + 1);
    for &kernel in kernels() {
        let o = forcing(kernel);
        arena.bytes_mut().copy_from_slice(&before);
        let status = call(&o, (row_begin, row_end), p_y, y_len, None, whole);
        assert_eq!(status, cq4_status::CQ4_OK, "kernel {kernel}");
        unchanged_outside(&before, arena.bytes(), &written);
        let ys: Vec<Vec<f32>> = written
            .iter()
            .map(|r| read_array(arena.bytes(), r.start, width))
            .collect();
        bounds.check(&ys, precision, kernel);
        let done = arena.bytes().to_vec();
        if kernel == first_kernel {
            same_bytes(&after, &done, "the first call's kernel, one thread");
        }
        // The same rows in two calls.
        arena.bytes_mut().copy_from_slice(&before);
        let head = call(&o, (row_begin, mid), p_y, y_len, None, false);
        let tail_y = p_y.wrapping_add(mid - row_begin);
        let tail_len = y_len.saturating_sub(mid - row_begin);
        let tail = call(&o, (mid, row_end), tail_y, tail_len, None, false);
        assert_eq!(
            (head, tail),
            (cq4_status::CQ4_OK, cq4_status::CQ4_OK),
            "split at {mid}"
        );
        same_bytes(
            &done,
            arena.bytes(),
            &format!("kernel {kernel} split at {mid}"),
        );
        // Half-float activations: their f32 values give the same bits.
        if elem != Elem::F32 {
            arena.bytes_mut().copy_from_slice(&before);
            let status = call(
                &o,
                (row_begin, row_end),
                p_y,
                y_len,
                Some(xs.as_ptr()),
                false,
            );
            assert_eq!(status, cq4_status::CQ4_OK);
            same_bytes(&done, arena.bytes(), &format!("kernel {kernel}, x as f32"));
        }
    }
}

/// The f64 reference of each output and what the header lets it differ by.
struct Bounds {
    cols: usize,
    /// Per activation row, per weight row of the range: (sum x w, sum |x w|,
    /// int8 activation rounding, in range, non-finite activations).
    cells: Vec<Vec<Cell>>,
}

#[derive(Clone, Copy)]
struct Cell {
    want: f64,
    abs: f64,
    slack: f64,
    /// Every weight, weight scale and activation 0 or within 2^±50, so
    /// that every term, `w_scale * x_scale` and every intermediate stays
    /// normal: where the bounds apply.
    tame: bool,
    /// The activation row holds NaN or an infinity.
    wild: bool,
}

impl Bounds {
    fn new(
        packed: &[u8],
        scales: &[f32],
        l: &model::Layout,
        x: &[f32],
        batch: usize,
        rows: std::ops::Range<usize>,
    ) -> Bounds {
        let cols = l.cols;
        let tame = |v: f32| v == 0.0 || (v.abs() >= 2f32.powi(-50) && v.abs() <= 2f32.powi(50));
        let cells = (0..batch)
            .map(|b| {
                let xr = &x[b * cols..(b + 1) * cols];
                let wild = xr.iter().any(|v| !v.is_finite());
                rows.clone()
                    .map(|r| {
                        let w: Vec<f32> = (0..cols)
                            .map(|c| reference::decode(packed, scales, l, r, c))
                            .collect();
                        let mut cell = Cell {
                            want: 0.0,
                            abs: 0.0,
                            slack: 0.0,
                            tame: xr
                                .iter()
                                .chain(&w)
                                .chain(&scales[r * l.groups_per_row..(r + 1) * l.groups_per_row])
                                .all(|&v| tame(v)),
                            wild,
                        };
                        for (xg, wg) in xr.chunks(l.group_size).zip(w.chunks(l.group_size)) {
                            let x_scale =
                                xg.iter().fold(0f64, |m, v| m.max(f64::from(v.abs()))) / 127.0;
                            let w_abs: f64 = wg.iter().map(|v| f64::from(v.abs())).sum();
                            cell.slack += w_abs * x_scale / 2.0;
                            for (&xv, &wv) in xg.iter().zip(wg) {
                                let t = f64::from(xv) * f64::from(wv);
                                cell.want += t;
                                cell.abs += t.abs();
                            }
                        }
                        cell
                    })
                    .collect()
            })
            .collect();
        Bounds { cols, cells }
    }

    /// Holds one kernel's outputs (`ys[b][i]` for weight row `rows.start + i`)
    /// to the header's statements.
    fn check(&self, ys: &[Vec<f32>], precision: u32, kernel: u32) {
        let int8 = precision == 1;
        let factor = (4.0 * (self.cols as f64).sqrt() + 4.0) * U;
        for (b, (row, cells)) in ys.iter().zip(&self.cells).enumerate() {
            for (i, (&y, c)) in row.iter().zip(cells).enumerate() {
                let at = format!("kernel {kernel} int8 {int8}: y[{b}][{i}] = {y:e}");
                if c.wild {
                    assert!(
                        !y.is_finite() && (!int8 || y.is_nan()),
                        "{at}: NaN or Inf activations"
                    );
                } else if c.tame {
                    let (slack, abs) = if int8 {
                        (c.slack, c.abs + c.slack)
                    } else {
                        (0.0, c.abs)
                    };
                    let bound = slack + factor * abs;
                    let err = (f64::from(y) - c.want).abs();
                    assert!(
                        err <= bound,
                        "{at}, want {:e}: error {err:e} > bound {bound:e}",
                        c.want
                    );
                }
            }
        }
    }
}
