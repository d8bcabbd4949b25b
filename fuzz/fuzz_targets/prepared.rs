//! The prepared form: `cq4_prepared_size`, `cq4_prepare`,
//! `cq4_prepared_matmul_f32` and `cq4_prepared_matmul_rows_f32` / `_f16` /
//! `_bf16`, and activations quantized once: `cq4_activations_size`,
//! `cq4_quantize_activations_f32` / `_f16` / `_bf16` and
//! `cq4_prepared_matmul_rows_int8` (the first input byte chooses).
//! Products read bytes that `cq4_prepare` wrote for the input's shape,
//! sometimes with a header or body byte flipped, cut short (or the options
//! struct written over them), or arena noise. Where the header is the one
//! prepared for the shape, the status is the model's; a header without
//! the magic `CQ4PANEL` is BAD_PREPARED; any other is BAD_PREPARED or a
//! later step's status. A success writes only
//! `y[b * y_stride + (r - row_begin)]` (any of `y` for an unknown shape),
//! and on the bytes as prepared every kernel this CPU runs, at any thread
//! count, gives the scalar kernel's bits (NaN as NaN), also with the rows
//! split in two calls; f16 and bf16 activations give the bits of their f32
//! values. `cq4_prepared_size` gives the header's size; `cq4_prepare`
//! writes only that many bytes, the same whatever the kernel and threads.
//!
//! Quantized activations are as `cq4_quantize_activations_f32` made them
//! for the input's shape, for other columns or another group size
//! (BAD_ACTIVATIONS), changed as the prepared bytes are, or noise (whose
//! status, past BAD_PREPARED, the model leaves open: the header names no
//! magic for them). `cq4_activations_size` gives the header's size; a
//! quantization writes exactly that many bytes, the same whatever the
//! kernel and threads, and f16 and bf16 values give the bytes of their f32
//! values. On the bytes as made, an int8 product gives the scalar kernel's
//! bits with every kernel and split, and those of
//! `cq4_prepared_matmul_rows_f32` in int8 precision on the values quantized.

#![no_main]

use std::ops::Range;

use cortex_q4::ffi::cq4_status::*;
use cortex_q4::ffi::*;
use cq4_fuzz::arena::read_array;
use cq4_fuzz::model::PREPARED_HEADER;
use cq4_fuzz::run::{
    call_checked, forcing, kernels, matrix_buffers, place_matrix, prefix_range, read_back,
    same_bytes, same_or_nan, unchanged_outside,
};
use cq4_fuzz::{model, Arena, Buf, Input, Place, Verdict, ARENA};
use half::{bf16, f16};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    match input.u8() % 11 {
        0 => size(&mut input, cq4_prepared_size, model::prepared_size),
        1 => prepare(&mut input),
        e @ 2..=5 => product(&mut input, e - 2),
        6 => size(&mut input, cq4_activations_size, model::activations_size),
        e @ 7..=9 => quantize(&mut input, ELEMS[usize::from(e - 7)]),
        _ => int8_product(&mut input),
    }
});

const MAGIC: &[u8; 8] = b"CQ4PANEL";

/// Thread counts a repeated call runs at: one, every core, two.
const THREADS: [u32; 3] = [1, 0, 2];

/// `cq4_options` forcing `kernel` at `threads`.
fn forcing_at(kernel: u32, threads: u32) -> cq4_options {
    cq4_options {
        threads,
        ..forcing(kernel)
    }
}

/// `cq4_prepared_size` or `cq4_activations_size`.
type SizeFn = unsafe extern "C" fn(usize, usize, usize, *mut usize) -> cq4_status;

fn size(
    input: &mut Input,
    f: SizeFn,
    model_size: fn(usize, usize, usize) -> Result<usize, cq4_status>,
) {
    let (rows, cols, g) = (input.count(), input.count(), input.group_size());
    let place = input.place();
    let mut arena = Arena::default();
    let fill = input.u8();
    arena.fill(fill, input.rest());
    let before = arena.bytes().to_vec();
    let bufs = [Buf::value_out::<usize>(arena.addr(place))];
    let want = model_size(rows, cols, g);
    let verdict = model::pointers(&bufs).and(want.map(drop));
    let p = arena.ptr::<usize>(place);
    // SAFETY: `p` is NULL, dangling or in the arena; `call_checked` lets a
    // call that writes through it run only where it lies in the arena.
    let call = || unsafe { f(rows, cols, g, p) };
    if !call_checked(&arena, &before, verdict, &bufs, call) {
        return;
    }
    let at = prefix_range(&arena, &bufs[0]);
    unchanged_outside(&before, arena.bytes(), std::slice::from_ref(&at));
    let got: Vec<u8> = read_array(arena.bytes(), at.start, 8);
    assert_eq!(usize::from_ne_bytes(got.try_into().unwrap()), want.unwrap());
}

fn prepare(input: &mut Input) {
    let (rows, cols, g) = (input.count(), input.count(), input.group_size());
    let (packed, packed_len) = (input.place(), input.len());
    let (scales, scales_len) = (input.place(), input.len());
    let w_place = input.struct_place(size_of::<cq4_matrix>());
    let (out, out_len) = (input.place(), input.len());
    let options_place = input.struct_place(size_of::<cq4_options>());
    let options = input.options();
    let threads = THREADS[usize::from(input.u8() % 3)];

    let layout = model::layout(rows, cols, g);
    let need = |f: fn(&model::Layout) -> usize| layout.as_ref().map_or(0, f);
    let size = layout.and_then(|_| model::prepared_size(rows, cols, g));
    let size_n = *size.as_ref().unwrap_or(&0);
    let packed_len = packed.declare(packed_len.resolve(need(|l| l.packed_len)));
    let scales_len = scales.declare(scales_len.resolve(need(|l| l.scales_len)));
    let out_len = out.declare(out_len.resolve(size_n));

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

    let mut bufs = [
        Buf::value_in::<cq4_matrix>(arena.addr(w_place)),
        Buf::output::<u8>(arena.addr(out), out_len).touching(size_n),
        Buf::value_in::<cq4_options>(arena.addr(options_place)).optional(),
        Buf::input::<u8>(0, 0).optional(),
        Buf::input::<f32>(0, 0).optional(),
    ];
    let verdict = (|| {
        model::pointers(&bufs[..3])?;
        [bufs[3], bufs[4]] = matrix_buffers(&before, w_place, matrix, layout.as_ref().ok());
        model::pointers(&bufs[3..])?;
        model::options(read_back(&before, options_place))?;
        size?;
        model::extents(&bufs)
    })();

    let p_w = arena.ptr::<cq4_matrix>(w_place).cast_const();
    let p_out = arena.ptr::<u8>(out);
    let p_options = arena.ptr::<cq4_options>(options_place).cast_const();
    // SAFETY: every pointer is NULL, dangling with length 0 or inside the
    // arena; `call_checked` lets through only calls whose prefixes lie in
    // the arena.
    let call = |o: *const cq4_options| unsafe { cq4_prepare(p_w, p_out, out_len, o) };
    if !call_checked(&arena, &before, verdict, &bufs, || call(p_options)) {
        return;
    }
    let written = prefix_range(&arena, &bufs[1]);
    unchanged_outside(&before, arena.bytes(), std::slice::from_ref(&written));
    assert_eq!(&arena.bytes()[written.start..written.start + 8], MAGIC);
    let after = arena.bytes().to_vec();
    for &kernel in kernels() {
        let o = forcing_at(kernel, threads);
        arena.bytes_mut().copy_from_slice(&before);
        assert_eq!(call(&o), CQ4_OK, "kernel {kernel}");
        same_bytes(
            &after,
            arena.bytes(),
            &format!("kernel {kernel}, {threads} threads"),
        );
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Elem {
    F32,
    F16,
    Bf16,
}

const ELEMS: [Elem; 3] = [Elem::F32, Elem::F16, Elem::Bf16];

/// What the bytes given as the prepared matrix hold.
enum Header {
    /// Those `cq4_prepare` wrote for the input's shape.
    Prepared { size: usize },
    /// No magic: not a prepared matrix.
    Foreign,
    /// A changed header, or noise that starts with the magic.
    Other,
}

/// The prepared form of a `[rows, cols]` matrix packed with `g` whose bytes
/// and scales are arena noise (`fill`), when both fit the arena.
fn prepared_bytes(rows: usize, cols: usize, g: usize, fill: u8, data: &[u8]) -> Option<Vec<u8>> {
    let l = model::layout(rows, cols, g).ok()?;
    let size = model::prepared_size(rows, cols, g).ok()?;
    let scales_at = l.packed_len.next_multiple_of(8);
    if size > ARENA || scales_at + 4 * l.scales_len > ARENA {
        return None;
    }
    let mut src = Arena::default();
    src.fill(fill, data);
    let w = cq4_matrix {
        packed: src.ptr::<u8>(Place::At(0)).cast_const(),
        packed_len: l.packed_len,
        scales: src.ptr::<f32>(Place::At(scales_at)).cast_const(),
        scales_len: l.scales_len,
        rows,
        cols,
        group_size: g,
    };
    let mut out = vec![0u8; size];
    // SAFETY: `w`'s buffers lie in `src` at their lengths, `out` holds `size`.
    let status = unsafe { cq4_prepare(&w, out.as_mut_ptr(), size, std::ptr::null()) };
    assert_eq!(status, CQ4_OK, "preparing the product's matrix");
    Some(out)
}

/// Changes bytes made for the input's shape as `(what, at, mask)` says: a
/// header byte or a body byte flipped, the bytes cut short (the arena's
/// noise then follows them), or nothing.
fn change(p: &mut Vec<u8>, (what, at, mask): (u8, u16, u8)) {
    let (at, mask, body) = (usize::from(at), mask.max(1), p.len() - PREPARED_HEADER);
    match what % 8 {
        0 => p[at % PREPARED_HEADER] ^= mask,
        1 if body > 0 => p[PREPARED_HEADER + at % body] ^= mask,
        2 => p.truncate(at % p.len()),
        _ => {}
    }
}

/// Copies `bytes` (what fits) to `place` in the arena.
fn place_bytes(arena: &mut Arena, place: Place, bytes: Option<&[u8]>) {
    if let (Some(p), Place::At(off)) = (bytes, place) {
        let n = p.len().min(ARENA - off);
        arena.bytes_mut()[off..off + n].copy_from_slice(&p[..n]);
    }
}

/// Whether the arena `before` the call holds `original` whole at `place`.
fn holds(before: &[u8], place: Place, original: Option<&[u8]>) -> bool {
    match (place, original) {
        (Place::At(off), Some(p)) => before.get(off..off + p.len()) == Some(p),
        _ => false,
    }
}

/// Whether the header at `off` is the one `original` starts with.
fn header_as_made(before: &[u8], off: usize, original: Option<&[u8]>) -> bool {
    original.is_some_and(|p| before[off..off + PREPARED_HEADER] == p[..PREPARED_HEADER])
}

/// What the prepared bytes at `off` hold, against those made for the shape.
fn prepared_header(before: &[u8], off: usize, original: Option<&[u8]>) -> Header {
    match original {
        Some(p) if header_as_made(before, off, original) => Header::Prepared { size: p.len() },
        _ if &before[off..off + 8] != MAGIC => Header::Foreign,
        _ => Header::Other,
    }
}

fn product(input: &mut Input, entry: u8) {
    let whole = entry == 0;
    let elem = [Elem::F32, Elem::F32, Elem::F16, Elem::Bf16][usize::from(entry)];
    let (rows, cols, g) = (input.count(), input.count(), input.group_size());
    let source = input.u8();
    let flip = (input.u8(), input.u16(), input.u8());
    let (prep, prep_len) = (input.place(), input.len());
    let (x, x_len) = (input.place(), input.len());
    let (y, y_len) = (input.place(), input.len());
    let options_place = input.struct_place(size_of::<cq4_options>());
    let options = input.options();
    let batch = input.count();
    let precision = input.precision();
    let (row_begin, row_end, y_stride) = input.row_range(rows, whole);
    let width = row_end.wrapping_sub(row_begin);
    let split = input.u8();
    let threads = THREADS[usize::from(split % 3)];

    let sizes = model::product_sizes(rows, cols, batch, row_begin, row_end, y_stride);
    let (x_n, y_n) = *sizes.as_ref().unwrap_or(&(0, 0));
    let data = input.rest();
    let mut prepared = match source % 4 {
        0 => None,
        _ => prepared_bytes(rows, cols, g, source >> 2, data),
    };
    let original = prepared.clone();
    if let Some(p) = prepared.as_mut() {
        change(p, flip);
    }
    let size_n = original.as_ref().map_or(0, Vec::len);
    let prep_len = prep.declare(prep_len.resolve(size_n));
    let x_len = x.declare(x_len.resolve(x_n));
    let y_len = y.declare(y_len.resolve(y_n));

    let mut arena = Arena::default();
    let fill = input.u8();
    arena.fill(fill, data);
    place_bytes(&mut arena, prep, prepared.as_deref());
    // The options may land on the prepared bytes: another way to change them.
    if let Place::At(off) = options_place {
        arena.write(off, options);
    }
    let before = arena.bytes().to_vec();

    let x_buf = match elem {
        Elem::F32 => Buf::input::<f32>(arena.addr(x), x_len),
        _ => Buf::input::<u16>(arena.addr(x), x_len),
    };
    let bufs = [
        Buf::input::<u8>(arena.addr(prep), prep_len),
        x_buf.touching(x_n),
        Buf::output::<f32>(arena.addr(y), y_len).touching(y_n),
        Buf::value_in::<cq4_options>(arena.addr(options_place)).optional(),
    ];
    let early = (|| {
        model::pointers(&bufs)?;
        model::options(read_back(&before, options_place))?;
        model::precision(precision)?;
        if prep_len < PREPARED_HEADER {
            return Err(CQ4_ERR_BAD_PREPARED);
        }
        Ok(())
    })();
    // Past the pointer checks the library may read the header, within
    // `prepared_len`: it must then lie in the arena.
    let header_at = match prep {
        Place::At(off) if off + PREPARED_HEADER <= ARENA => Some(off),
        _ => None,
    };
    if model::pointers(&bufs).is_ok() && prep_len >= PREPARED_HEADER && header_at.is_none() {
        return;
    }
    let header = match (early, header_at) {
        (Ok(()), Some(off)) => prepared_header(&before, off, original.as_deref()),
        // Refused before the header counts.
        (Err(_), _) => Header::Foreign,
        (Ok(()), None) => unreachable!("a header outside the arena passed the checks"),
    };

    let p_prep = arena.ptr::<u8>(prep).cast_const();
    let p_x = arena.ptr::<u8>(x).cast_const();
    let p_y = arena.ptr::<f32>(y);
    let p_options = arena.ptr::<cq4_options>(options_place).cast_const();
    // Rows `range` into `y_at` (`y_at_len` elements), `x` given as f32 at
    // `xf` when not None; `whole_call` for cq4_prepared_matmul_f32 itself.
    let call = |o: *const cq4_options,
                range: (usize, usize),
                y_at: *mut f32,
                y_at_len: usize,
                xf: Option<*const f32>,
                whole_call: bool| {
        let (rb, re) = range;
        let (p, pl) = (p_prep, prep_len);
        // SAFETY: every pointer is NULL, dangling with length 0, inside the
        // arena or (`xf`) a live f32 copy of x; only calls whose prefixes
        // (or, for an unknown header, declared lengths) lie in the arena
        // are made.
        unsafe {
            match (elem, xf) {
                (_, Some(xf)) => cq4_prepared_matmul_rows_f32(
                    p, pl, xf, x_n, batch, precision, rb, re, y_at, y_at_len, y_stride, o,
                ),
                (Elem::F32, None) if whole_call => cq4_prepared_matmul_f32(
                    p,
                    pl,
                    p_x.cast(),
                    x_len,
                    batch,
                    precision,
                    y_at,
                    y_at_len,
                    o,
                ),
                (Elem::F32, None) => cq4_prepared_matmul_rows_f32(
                    p,
                    pl,
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
                (Elem::F16, None) => cq4_prepared_matmul_rows_f16(
                    p,
                    pl,
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
                (Elem::Bf16, None) => cq4_prepared_matmul_rows_bf16(
                    p,
                    pl,
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

    // The arena ranges a success may write.
    let written: Vec<Range<usize>> = match header {
        Header::Foreign => {
            let verdict = early.and(Err(CQ4_ERR_BAD_PREPARED));
            call_checked(&arena, &before, verdict, &bufs, first);
            return;
        }
        Header::Prepared { size } => {
            let bufs = [bufs[0].touching(size), bufs[1], bufs[2], bufs[3]];
            let verdict = sizes.and_then(|_| model::extents(&bufs));
            if !call_checked(&arena, &before, verdict, &bufs, first) {
                return;
            }
            let y_off = prefix_range(&arena, &bufs[2]).start;
            (0..if width == 0 { 0 } else { batch })
                .map(|b| y_off + b * y_stride * 4..y_off + (b * y_stride + width) * 4)
                .collect()
        }
        Header::Other => {
            open_shape(&arena, &before, &bufs, &[CQ4_ERR_BAD_PREPARED], first);
            return;
        }
    };
    unchanged_outside(&before, arena.bytes(), &written);
    // Changed bytes promise nothing more: a changed scale or largest-scale
    // field may let a SIMD kernel skip holding products to the finite
    // range. The bits are compared on the bytes as prepared only.
    let intact = holds(&before, prep, original.as_deref());
    let after = arena.bytes().to_vec();
    if !intact || written.iter().all(|r| r.is_empty()) {
        return;
    }

    let xs = read_x(&before, arena.offset(bufs[1].addr).unwrap_or(0), x_n, elem);
    let mid = row_begin + usize::from(split) % (width.min(usize::MAX - 1) + 1);
    let mut scalar: Option<Vec<u8>> = None;
    for &kernel in kernels() {
        let o = forcing_at(kernel, threads);
        let what = format!("kernel {kernel}, {threads} threads");
        arena.bytes_mut().copy_from_slice(&before);
        let status = call(&o, (row_begin, row_end), p_y, y_len, None, whole);
        assert_eq!(status, CQ4_OK, "{what}");
        unchanged_outside(&before, arena.bytes(), &written);
        let done = arena.bytes().to_vec();
        // The scalar kernel comes first: every other one and the first
        // call must give its bits.
        let want = scalar.get_or_insert_with(|| done.clone());
        same_outputs(want, &done, &written, &what);
        same_outputs(want, &after, &written, "the first call");
        if !whole {
            arena.bytes_mut().copy_from_slice(&before);
            let head = call(&o, (row_begin, mid), p_y, y_len, None, false);
            let tail_y = p_y.wrapping_add(mid - row_begin);
            let tail_len = y_len.saturating_sub(mid - row_begin);
            let tail = call(&o, (mid, row_end), tail_y, tail_len, None, false);
            assert_eq!((head, tail), (CQ4_OK, CQ4_OK), "{what}, split at {mid}");
            same_bytes(&done, arena.bytes(), &format!("{what}, split at {mid}"));
        }
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
            assert_eq!(status, CQ4_OK, "{what}, x as f32");
            same_bytes(&done, arena.bytes(), &format!("{what}, x as f32"));
        }
    }
}

/// A product on bytes whose header the model does not know (`y` is
/// `bufs[2]`): made only when every declared length lies in the arena; a
/// refusal, with a status of `open` or of a later step, writes nothing, a
/// success only within `y`'s declared elements.
fn open_shape(
    arena: &Arena,
    before: &[u8],
    bufs: &[Buf],
    open: &[cq4_status],
    call: impl FnOnce() -> cq4_status,
) {
    const LATER: [cq4_status; 6] = [
        CQ4_ERR_BAD_ROW_RANGE,
        CQ4_ERR_BAD_STRIDE,
        CQ4_ERR_SIZE_OVERFLOW,
        CQ4_ERR_OVERLAPPING_BUFFERS,
        CQ4_ERR_INPUT_TOO_SHORT,
        CQ4_ERR_OUTPUT_TOO_SMALL,
    ];
    let declared = |b: &Buf| {
        !b.given()
            || b.len == 0
            || b.len
                .checked_mul(b.size)
                .is_some_and(|n| arena.holds(b.addr, n))
    };
    if !bufs.iter().all(declared) {
        return;
    }
    let status = call();
    if status == CQ4_OK {
        let y = &bufs[2];
        let y_off = arena.offset(y.addr).unwrap_or(0);
        let y_range = y_off..y_off + y.len * 4;
        unchanged_outside(before, arena.bytes(), std::slice::from_ref(&y_range));
        return;
    }
    assert!(
        open.contains(&status) || LATER.contains(&status),
        "status {status:?} for a changed header"
    );
    same_bytes(before, arena.bytes(), &format!("refused with {status:?}"));
}

/// `got` holds `want`'s bytes, but where `written` (f32 outputs) NaN
/// stands for any NaN.
fn same_outputs(want: &[u8], got: &[u8], written: &[Range<usize>], what: &str) {
    unchanged_outside(want, got, written);
    for r in written {
        let n = r.len() / 4;
        let (a, b): (Vec<f32>, Vec<f32>) =
            (read_array(want, r.start, n), read_array(got, r.start, n));
        if let Some(i) = (0..n).find(|&i| !same_or_nan(b[i], a[i])) {
            panic!(
                "{what}: output at arena byte {} is {:e}, want {:e}",
                r.start + 4 * i,
                b[i],
                a[i]
            );
        }
    }
}

/// `x` (`[batch, cols]`, `elem`) given to `cq4_quantize_activations_*`.
///
/// # Safety
/// As the function's.
#[allow(clippy::too_many_arguments)] // mirrors the C entry points
unsafe fn quantize_call(
    elem: Elem,
    x: *const u8,
    x_len: usize,
    batch: usize,
    cols: usize,
    g: usize,
    out: *mut u8,
    out_len: usize,
    options: *const cq4_options,
) -> cq4_status {
    // SAFETY: the caller's.
    unsafe {
        match elem {
            Elem::F32 => {
                cq4_quantize_activations_f32(x.cast(), x_len, batch, cols, g, out, out_len, options)
            }
            Elem::F16 => {
                cq4_quantize_activations_f16(x.cast(), x_len, batch, cols, g, out, out_len, options)
            }
            Elem::Bf16 => cq4_quantize_activations_bf16(
                x.cast(),
                x_len,
                batch,
                cols,
                g,
                out,
                out_len,
                options,
            ),
        }
    }
}

/// `x`'s elements as the arena `bytes` hold them at `off`, as f32.
fn read_x(bytes: &[u8], off: usize, n: usize, elem: Elem) -> Vec<f32> {
    match elem {
        Elem::F32 => read_array(bytes, off, n),
        Elem::F16 => read_array(bytes, off, n)
            .into_iter()
            .map(|h| f16::from_bits(h).to_f32())
            .collect(),
        Elem::Bf16 => read_array(bytes, off, n)
            .into_iter()
            .map(|h| bf16::from_bits(h).to_f32())
            .collect(),
    }
}

/// The activations `x` (f32) quantized for `[batch, cols]` at `g`, from
/// `cq4_quantize_activations_f32` with the default options.
fn quantized(x: &[f32], batch: usize, cols: usize, g: usize, size: usize) -> Vec<u8> {
    let mut out = vec![0u8; size];
    // SAFETY: `x` and `out` are live for their lengths.
    let status = unsafe {
        cq4_quantize_activations_f32(
            x.as_ptr(),
            x.len(),
            batch,
            cols,
            g,
            out.as_mut_ptr(),
            size,
            std::ptr::null(),
        )
    };
    assert_eq!(status, CQ4_OK, "quantizing the product's activations");
    out
}

fn quantize(input: &mut Input, elem: Elem) {
    let (batch, cols, g) = (input.count(), input.count(), input.group_size());
    let (x, x_len) = (input.place(), input.len());
    let (out, out_len) = (input.place(), input.len());
    let options_place = input.struct_place(size_of::<cq4_options>());
    let options = input.options();
    let threads = THREADS[usize::from(input.u8() % 3)];

    let size = model::activations_size(batch, cols, g);
    let size_n = *size.as_ref().unwrap_or(&0);
    // A size means a layout: `batch * cols` fits.
    let x_n = if size.is_ok() { batch * cols } else { 0 };
    let x_len = x.declare(x_len.resolve(x_n));
    let out_len = out.declare(out_len.resolve(size_n));

    let mut arena = Arena::default();
    let fill = input.u8();
    arena.fill(fill, input.rest());
    if let Place::At(off) = options_place {
        arena.write(off, options);
    }
    let before = arena.bytes().to_vec();

    let x_buf = match elem {
        Elem::F32 => Buf::input::<f32>(arena.addr(x), x_len),
        _ => Buf::input::<u16>(arena.addr(x), x_len),
    };
    let bufs = [
        x_buf.touching(x_n),
        Buf::output::<u8>(arena.addr(out), out_len).touching(size_n),
        Buf::value_in::<cq4_options>(arena.addr(options_place)).optional(),
    ];
    let verdict = (|| {
        model::pointers(&bufs)?;
        model::options(read_back(&before, options_place))?;
        size?;
        model::extents(&bufs)
    })();

    let p_x = arena.ptr::<u8>(x).cast_const();
    let p_out = arena.ptr::<u8>(out);
    let p_options = arena.ptr::<cq4_options>(options_place).cast_const();
    // SAFETY: every pointer is NULL, dangling with length 0 or inside the
    // arena; `call_checked` lets through only calls whose prefixes lie in
    // the arena.
    let call = |o: *const cq4_options| unsafe {
        quantize_call(elem, p_x, x_len, batch, cols, g, p_out, out_len, o)
    };
    if !call_checked(&arena, &before, verdict, &bufs, || call(p_options)) {
        return;
    }
    let written = prefix_range(&arena, &bufs[1]);
    unchanged_outside(&before, arena.bytes(), std::slice::from_ref(&written));
    let after = arena.bytes().to_vec();
    for &kernel in kernels() {
        let o = forcing_at(kernel, threads);
        let what = format!("kernel {kernel}, {threads} threads");
        arena.bytes_mut().copy_from_slice(&before);
        assert_eq!(call(&o), CQ4_OK, "{what}");
        same_bytes(&after, arena.bytes(), &what);
    }
    if elem != Elem::F32 {
        let off = arena.offset(bufs[0].addr).unwrap_or(0);
        let xs = read_x(&before, off, x_n, elem);
        same_bytes(
            &quantized(&xs, batch, cols, g, size_n),
            &after[written],
            "x as f32",
        );
    }
}

/// The shape quantized activations were made for, and their size.
#[derive(Clone, Copy)]
struct Acts {
    batch: usize,
    cols: usize,
    g: usize,
    size: usize,
}

/// Activations of `batch` rows quantized for `cols` and `g` from arena
/// noise (`fill`) read as f32, when both fit the arena: those values and
/// the bytes.
fn activation_bytes(
    acts: (usize, usize, usize),
    fill: u8,
    data: &[u8],
) -> Option<(Acts, Vec<f32>, Vec<u8>)> {
    let (batch, cols, g) = acts;
    let size = model::activations_size(batch, cols, g).ok()?;
    let x_n = batch * cols;
    if size > ARENA || x_n > ARENA / 4 {
        return None;
    }
    let mut src = Arena::default();
    src.fill(fill, data);
    let xs: Vec<f32> = read_array(src.bytes(), 0, x_n);
    let bytes = quantized(&xs, batch, cols, g, size);
    let shape = Acts {
        batch,
        cols,
        g,
        size,
    };
    Some((shape, xs, bytes))
}

fn int8_product(input: &mut Input) {
    let (rows, cols, g) = (input.count(), input.count(), input.group_size());
    let (source, flip) = (input.u8(), (input.u8(), input.u16(), input.u8()));
    let (acts_source, acts_fill) = (input.u8(), input.u8());
    let acts_flip = (input.u8(), input.u16(), input.u8());
    let (prep, prep_len) = (input.place(), input.len());
    let (acts, acts_len) = (input.place(), input.len());
    let (y, y_len) = (input.place(), input.len());
    let options_place = input.struct_place(size_of::<cq4_options>());
    let options = input.options();
    let batch = input.count();
    let (row_begin, row_end, y_stride) = input.row_range(rows, false);
    let split = input.u8();
    let threads = THREADS[usize::from(split % 3)];

    let data = input.rest();
    let original = match source % 4 {
        0 => None,
        _ => prepared_bytes(rows, cols, g, source >> 2, data),
    };
    // Activations for the matrix's shape, for other columns or another
    // group size, or none (noise).
    let other_g = if g > 1 { g / 2 } else { 2 };
    let made = match acts_source % 8 {
        0 | 1 => None,
        2 => activation_bytes((batch, cols.wrapping_add(1), g), acts_fill, data),
        3 => activation_bytes((batch, cols, other_g), acts_fill, data),
        _ => activation_bytes((batch, cols, g), acts_fill, data),
    };
    let (shape, xs, acts_original) = match made {
        Some((shape, xs, bytes)) => (Some(shape), xs, Some(bytes)),
        None => (None, Vec::new(), None),
    };
    let mut prepared = original.clone();
    if let Some(p) = prepared.as_mut() {
        change(p, flip);
    }
    let mut quantized_acts = acts_original.clone();
    if let Some(a) = quantized_acts.as_mut() {
        change(a, acts_flip);
    }

    // Lengths as the bytes made need them; y's as the matrix and the
    // activations' batch do.
    let sizes =
        shape.map(|a| model::product_sizes(rows, cols, a.batch, row_begin, row_end, y_stride));
    let y_n = match sizes {
        Some(Ok((_, y_n))) => y_n,
        _ => 0,
    };
    let prep_len = prep.declare(prep_len.resolve(original.as_ref().map_or(0, Vec::len)));
    let acts_len = acts.declare(acts_len.resolve(shape.map_or(0, |a| a.size)));
    let y_len = y.declare(y_len.resolve(y_n));

    let mut arena = Arena::default();
    let fill = input.u8();
    arena.fill(fill, data);
    place_bytes(&mut arena, prep, prepared.as_deref());
    place_bytes(&mut arena, acts, quantized_acts.as_deref());
    if let Place::At(off) = options_place {
        arena.write(off, options);
    }
    let before = arena.bytes().to_vec();

    let bufs = [
        Buf::input::<u8>(arena.addr(prep), prep_len),
        Buf::input::<u8>(arena.addr(acts), acts_len),
        Buf::output::<f32>(arena.addr(y), y_len),
        Buf::value_in::<cq4_options>(arena.addr(options_place)).optional(),
    ];
    let early =
        model::pointers(&bufs).and_then(|()| model::options(read_back(&before, options_place)));
    // Past those checks the library may read both headers, within their
    // declared lengths: they must then lie in the arena.
    let header_at = |place: Place, len: usize| match place {
        Place::At(off) if off + PREPARED_HEADER <= ARENA && len >= PREPARED_HEADER => Some(off),
        _ => None,
    };
    let (prep_at, acts_at) = (header_at(prep, prep_len), header_at(acts, acts_len));
    let outside = |at: Option<usize>, len: usize| at.is_none() && len >= PREPARED_HEADER;
    if model::pointers(&bufs).is_ok() && (outside(prep_at, prep_len) || outside(acts_at, acts_len))
    {
        return;
    }
    let prep_header = match (early, prep_at) {
        (Ok(()), Some(off)) => Some(prepared_header(&before, off, original.as_deref())),
        _ => None,
    };

    // The model's verdict and the bytes each buffer touches, or None where
    // a changed header leaves the status open.
    let known: Option<(Verdict, [Buf; 4])> = (|| {
        let refused = |e| Some((Err(e), bufs));
        if let Err(e) = early {
            return refused(e);
        }
        let p_size = match prep_header {
            Some(Header::Prepared { size }) => size,
            // Shorter than a header, or no magic.
            None | Some(Header::Foreign) => return refused(CQ4_ERR_BAD_PREPARED),
            Some(Header::Other) => return None,
        };
        let Some(off) = acts_at else {
            return refused(CQ4_ERR_BAD_ACTIVATIONS);
        };
        let a = shape.filter(|_| header_as_made(&before, off, acts_original.as_deref()))?;
        if (a.cols, a.g) != (cols, g) {
            return refused(CQ4_ERR_BAD_ACTIVATIONS);
        }
        let bufs = [
            bufs[0].touching(p_size),
            bufs[1].touching(a.size),
            bufs[2].touching(y_n),
            bufs[3],
        ];
        let verdict = sizes
            .unwrap_or(Ok((0, 0)))
            .and_then(|_| model::extents(&bufs));
        Some((verdict, bufs))
    })();

    let p_prep = arena.ptr::<u8>(prep).cast_const();
    let p_acts = arena.ptr::<u8>(acts).cast_const();
    let p_y = arena.ptr::<f32>(y);
    let p_options = arena.ptr::<cq4_options>(options_place).cast_const();
    // SAFETY: every pointer is NULL, dangling with length 0 or inside the
    // arena; only calls whose prefixes (or, for a changed header, declared
    // lengths) lie in the arena are made.
    let call =
        |o: *const cq4_options, (rb, re): (usize, usize), y_at: *mut f32, y_at_len: usize| unsafe {
            cq4_prepared_matmul_rows_int8(
                p_prep, prep_len, p_acts, acts_len, rb, re, y_at, y_at_len, y_stride, o,
            )
        };
    let first = || call(p_options, (row_begin, row_end), p_y, y_len);

    let Some((verdict, bufs)) = known else {
        let open: &[cq4_status] = match prep_header {
            Some(Header::Other) => &[CQ4_ERR_BAD_PREPARED, CQ4_ERR_BAD_ACTIVATIONS],
            _ => &[CQ4_ERR_BAD_ACTIVATIONS],
        };
        open_shape(&arena, &before, &bufs, open, first);
        return;
    };
    if !call_checked(&arena, &before, verdict, &bufs, first) {
        return;
    }
    // Known activations passed: their batch is the shape's.
    let a = shape.expect("activations of a known shape");
    let width = row_end - row_begin;
    let y_off = prefix_range(&arena, &bufs[2]).start;
    let written: Vec<Range<usize>> = (0..if width == 0 { 0 } else { a.batch })
        .map(|b| y_off + b * y_stride * 4..y_off + (b * y_stride + width) * 4)
        .collect();
    unchanged_outside(&before, arena.bytes(), &written);
    let after = arena.bytes().to_vec();
    // Bits are compared on the bytes as made only.
    let intact =
        holds(&before, prep, original.as_deref()) && holds(&before, acts, acts_original.as_deref());
    if !intact || written.iter().all(|r| r.is_empty()) {
        return;
    }
    let mid = row_begin + usize::from(split) % (width + 1);
    let mut scalar: Option<Vec<u8>> = None;
    for &kernel in kernels() {
        let o = forcing_at(kernel, threads);
        let what = format!("kernel {kernel}, {threads} threads");
        arena.bytes_mut().copy_from_slice(&before);
        assert_eq!(call(&o, (row_begin, row_end), p_y, y_len), CQ4_OK, "{what}");
        unchanged_outside(&before, arena.bytes(), &written);
        let done = arena.bytes().to_vec();
        let want = scalar.get_or_insert_with(|| done.clone());
        same_outputs(want, &done, &written, &what);
        same_outputs(want, &after, &written, "the first call");

        arena.bytes_mut().copy_from_slice(&before);
        let head = call(&o, (row_begin, mid), p_y, y_len);
        let tail_y = p_y.wrapping_add(mid - row_begin);
        let tail = call(&o, (mid, row_end), tail_y, y_len - (mid - row_begin));
        assert_eq!((head, tail), (CQ4_OK, CQ4_OK), "{what}, split at {mid}");
        same_bytes(&done, arena.bytes(), &format!("{what}, split at {mid}"));

        // The f32 product in int8 precision on the values quantized.
        arena.bytes_mut().copy_from_slice(&before);
        // SAFETY: `p_prep` and `p_y` lie in the arena at their prefixes
        // (checked above), `xs` is live for its length.
        let status = unsafe {
            cq4_prepared_matmul_rows_f32(
                p_prep,
                prep_len,
                xs.as_ptr(),
                xs.len(),
                a.batch,
                cq4_precision::CQ4_PRECISION_INT8 as u32,
                row_begin,
                row_end,
                p_y,
                y_len,
                y_stride,
                &o,
            )
        };
        assert_eq!(status, CQ4_OK, "{what}, f32 in int8 precision");
        same_outputs(
            &done,
            arena.bytes(),
            &written,
            &format!("{what}, f32 in int8 precision"),
        );
    }
}
