//! Pack: `cq4_pack_f32`, `cq4_pack_f16`, `cq4_pack_bf16`, `cq4_pack_f32_ex`,
//! `cq4_pack_f16_ex`, `cq4_pack_bf16_ex`, `cq4_pack_encoded_f32`,
//! `cq4_pack_encoded_f16`, `cq4_pack_encoded_bf16`, and the calibration
//! for the error-compensating encoder, `cq4_hessian_accumulate_f32`,
//! `cq4_hessian_accumulate_f16`, `cq4_hessian_accumulate_bf16` (the first
//! input byte chooses). On success: the default encoder's bytes are the
//! format's definition, a Hessian is its sums within the header's bound,
//! and every kernel gives the bytes of the first call.

#![no_main]

use cortex_q4::ffi::cq4_status::*;
use cortex_q4::ffi::*;
use cq4_fuzz::arena::{read_array, ARENA};
use cq4_fuzz::input::HessianFill;
use cq4_fuzz::model::HessianVerdict;
use cq4_fuzz::run::{
    call_checked, call_either, forcing, kernels, prefix_range, read_back, unchanged_outside,
};
use cq4_fuzz::{model, reference, run, Arena, Buf, Input, Place};
use half::{bf16, f16};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pack(data));

#[derive(Clone, Copy, PartialEq, Eq)]
enum Elem {
    F32,
    F16,
    Bf16,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Plain,
    Ex,
    Encoded,
}

fn pack(data: &[u8]) {
    let mut input = Input::new(data);
    let entry = input.u8() % 12;
    if entry >= 9 {
        return accumulate(
            &mut input,
            [Elem::F32, Elem::F16, Elem::Bf16][usize::from(entry - 9)],
        );
    }
    let elem = [Elem::F32, Elem::F16, Elem::Bf16][usize::from(entry % 3)];
    let variant = [Variant::Plain, Variant::Ex, Variant::Encoded][usize::from(entry / 3)];
    let (rows, cols, g) = (input.count(), input.count(), input.group_size());
    let (src, src_len) = (input.place(), input.len());
    let (packed, packed_len) = (input.place(), input.len());
    let (scales, scales_len) = (input.place(), input.len());
    let options = (variant != Variant::Plain).then(|| {
        let place = input.struct_place(size_of::<cq4_options>());
        (place, input.options())
    });
    let encoder = (variant == Variant::Encoded).then(|| {
        let place = input.struct_place(size_of::<cq4_encoder_options>());
        (place, input.encoder())
    });

    let layout = model::layout(rows, cols, g);
    let need = |f: fn(&model::Layout) -> usize| layout.as_ref().map_or(0, f);
    let src_len = src.declare(src_len.resolve(need(|l| l.elements)));
    let packed_len = packed.declare(packed_len.resolve(need(|l| l.packed_len)));
    let scales_len = scales.declare(scales_len.resolve(need(|l| l.scales_len)));

    let mut arena = Arena::default();
    let fill = input.u8();
    arena.fill(fill, input.rest());
    let options_place = options.map_or(Place::Null, |(p, _)| p);
    if let Some((Place::At(off), o)) = options {
        arena.write(off, o);
    }
    let encoder_place = encoder.map_or(Place::Null, |(p, _)| p);
    if let Some((place, e)) = encoder {
        let hessian_len = model::hessian_size(cols).unwrap_or(0);
        if let (Place::At(off), HessianFill::Gram { .. }) = (e.hessian, e.hessian_fill) {
            write_gram(&mut arena, off, cols, e.hessian_fill);
        }
        let c = cq4_encoder_options {
            struct_size: e.struct_size,
            encoder: e.encoder,
            importance: arena.ptr::<f32>(e.importance).cast_const(),
            importance_len: e.importance.declare(e.importance_len.resolve(cols)),
            hessian: arena.ptr::<f64>(e.hessian).cast_const(),
            hessian_len: e.hessian.declare(e.hessian_len.resolve(hessian_len)),
            damping: e.damping,
        };
        match place {
            // 0.2's struct: its fields alone, arena bytes after them.
            Place::At(off) if e.struct_size as usize == model::ENCODER_OPTIONS_0_2 => {
                let old = model::EncoderOptions02 {
                    struct_size: c.struct_size,
                    encoder: c.encoder,
                    importance: c.importance,
                    importance_len: c.importance_len,
                };
                arena.write(off, old);
            }
            Place::At(off) => arena.write(off, c),
            _ => {}
        }
    }
    let before = arena.bytes().to_vec();

    let src_buf = match elem {
        Elem::F32 => Buf::input::<f32>(arena.addr(src), src_len),
        _ => Buf::input::<u16>(arena.addr(src), src_len),
    };
    let mut bufs = [
        src_buf.touching(need(|l| l.elements)),
        Buf::output::<u8>(arena.addr(packed), packed_len).touching(need(|l| l.packed_len)),
        Buf::output::<f32>(arena.addr(scales), scales_len).touching(need(|l| l.scales_len)),
        Buf::value_in::<cq4_options>(arena.addr(options_place)).optional(),
        Buf::value_in::<cq4_encoder_options>(arena.addr(encoder_place)).optional(),
        // The importance weights and the Hessian, once the encoder options
        // are read.
        Buf::input::<f32>(0, 0).optional(),
        Buf::input::<f64>(0, 0).optional(),
    ];
    let mut encoder_read = None;
    // Whether the Hessian is too close to singular for the model to say.
    let mut either = false;
    let verdict = (|| {
        model::pointers(&bufs[..5])?;
        model::options(read_back(&before, options_place))?;
        let e = model::encoder(read_back(&before, encoder_place))?;
        encoder_read = e;
        let l = layout?;
        if let Some(e) = e {
            // The struct counts as the bytes it declares.
            bufs[4].size = e.struct_size as usize;
            bufs[5] = Buf::input::<f32>(e.importance.addr(), e.importance_len)
                .optional()
                .touching(cols);
            bufs[6] = Buf::input::<f64>(e.hessian.addr(), e.hessian_len).optional();
            if bufs[6].given() {
                bufs[6] = bufs[6].touching(cols.checked_mul(cols).ok_or(CQ4_ERR_SIZE_OVERFLOW)?);
            }
        }
        model::extents(&bufs)?;
        let weights = &bufs[5];
        if weights.given() && arena.holds(weights.addr, cols * 4) {
            let off = arena.offset(weights.addr).unwrap_or(0);
            let w: Vec<f32> = read_array(&before, off, cols);
            if w.iter().any(|&v| v < 0.0 || !v.is_finite()) {
                return Err(CQ4_ERR_BAD_IMPORTANCE);
            }
        }
        let h = &bufs[6];
        if let (Some(e), true) = (e, h.given() && arena.holds(h.addr, h.used * 8)) {
            let off = arena.offset(h.addr).unwrap_or(0);
            let values: Vec<f64> = read_array(&before, off, h.used);
            match model::hessian(&values, l.cols, e.damping) {
                HessianVerdict::Accepted => {}
                HessianVerdict::Refused => return Err(CQ4_ERR_BAD_HESSIAN),
                HessianVerdict::EitherWay => either = true,
            }
        }
        Ok(())
    })();

    let p_src = arena.ptr::<u8>(src);
    let p_packed = arena.ptr::<u8>(packed);
    let p_scales = arena.ptr::<f32>(scales);
    let p_options = arena.ptr::<cq4_options>(options_place).cast_const();
    let p_encoder = arena.ptr::<cq4_encoder_options>(encoder_place).cast_const();
    // The call as the input chose it (`forced` None), or with options
    // forcing a kernel: the plain functions then become their _ex twins.
    let call = |forced: Option<*const cq4_options>| {
        let (f32s, halves) = (
            p_src.cast::<f32>().cast_const(),
            p_src.cast::<u16>().cast_const(),
        );
        let o = forced.unwrap_or(p_options);
        let plain = variant == Variant::Plain && forced.is_none();
        // SAFETY: every pointer is NULL, dangling with length 0, or inside
        // the arena; `safe` let through only calls whose prefixes lie in it.
        unsafe {
            match (elem, variant) {
                (Elem::F32, Variant::Encoded) => cq4_pack_encoded_f32(
                    f32s, src_len, rows, cols, g, p_packed, packed_len, p_scales, scales_len, o,
                    p_encoder,
                ),
                (Elem::F16, Variant::Encoded) => cq4_pack_encoded_f16(
                    halves, src_len, rows, cols, g, p_packed, packed_len, p_scales, scales_len, o,
                    p_encoder,
                ),
                (Elem::Bf16, Variant::Encoded) => cq4_pack_encoded_bf16(
                    halves, src_len, rows, cols, g, p_packed, packed_len, p_scales, scales_len, o,
                    p_encoder,
                ),
                (Elem::F32, _) if plain => cq4_pack_f32(
                    f32s, src_len, rows, cols, g, p_packed, packed_len, p_scales, scales_len,
                ),
                (Elem::F16, _) if plain => cq4_pack_f16(
                    halves, src_len, rows, cols, g, p_packed, packed_len, p_scales, scales_len,
                ),
                (Elem::Bf16, _) if plain => cq4_pack_bf16(
                    halves, src_len, rows, cols, g, p_packed, packed_len, p_scales, scales_len,
                ),
                (Elem::F32, _) => cq4_pack_f32_ex(
                    f32s, src_len, rows, cols, g, p_packed, packed_len, p_scales, scales_len, o,
                ),
                (Elem::F16, _) => cq4_pack_f16_ex(
                    halves, src_len, rows, cols, g, p_packed, packed_len, p_scales, scales_len, o,
                ),
                (Elem::Bf16, _) => cq4_pack_bf16_ex(
                    halves, src_len, rows, cols, g, p_packed, packed_len, p_scales, scales_len, o,
                ),
            }
        }
    };
    let ran = if either && verdict.is_ok() {
        call_either(&arena, &before, &bufs, CQ4_ERR_BAD_HESSIAN, || call(None))
    } else {
        call_checked(&arena, &before, verdict, &bufs, || call(None))
    };
    if !ran {
        return;
    }
    let Ok(l) = layout else { unreachable!() };
    let (packed_range, scales_range) = (
        prefix_range(&arena, &bufs[1]),
        prefix_range(&arena, &bufs[2]),
    );
    unchanged_outside(
        &before,
        arena.bytes(),
        &[packed_range.clone(), scales_range.clone()],
    );
    let after = arena.bytes().to_vec();

    if encoder_read.is_none_or(|e| e.encoder == 0) {
        let off = prefix_range(&arena, &bufs[0]).start;
        let values: Vec<f32> = match elem {
            Elem::F32 => read_array(&before, off, l.elements),
            Elem::F16 => read_array(&before, off, l.elements)
                .into_iter()
                .map(|h| f16::from_bits(h).to_f32())
                .collect(),
            Elem::Bf16 => read_array(&before, off, l.elements)
                .into_iter()
                .map(|h| bf16::from_bits(h).to_f32())
                .collect(),
        };
        let (want_packed, want_scales) = reference::pack(&values, &l);
        assert_eq!(&after[packed_range], &want_packed[..], "packed bytes");
        let got_scales: Vec<f32> = read_array(&after, scales_range.start, l.scales_len);
        let bits = |s: &[f32]| s.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got_scales), bits(&want_scales), "scales");
    }
    for &kernel in kernels() {
        let o = forcing(kernel);
        run::again(
            &mut arena,
            &before,
            &after,
            format_args!("kernel {kernel}"),
            || call(Some(&o)),
        );
    }
}

/// Writes at `off`, when the arena holds it, the `[cols, cols]` Gram
/// matrix `Xᵀ X` of the rows `fill` describes (singular when they are
/// fewer than `cols`), with the change it names.
fn write_gram(arena: &mut Arena, off: usize, cols: usize, fill: HessianFill) {
    let HessianFill::Gram {
        rows,
        seed,
        scale,
        changed,
    } = fill
    else {
        return;
    };
    let Some(n) = cols
        .checked_mul(cols)
        .filter(|&n| n > 0 && n <= (ARENA - off) / 8)
    else {
        return;
    };
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let unit = 2f64.powi(scale);
    let x: Vec<f64> = (0..rows * cols)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 58) as f64 - 32.0) * unit
        })
        .collect();
    let mut h = vec![0f64; n];
    for row in x.chunks_exact(cols) {
        for i in 0..cols {
            for j in 0..cols {
                h[i * cols + j] += row[i] * row[j];
            }
        }
    }
    if let Some((at, add)) = changed {
        h[at % n] += add;
    }
    for (k, v) in h.into_iter().enumerate() {
        arena.write(off + 8 * k, v);
    }
}

/// `cq4_hessian_accumulate_*` with its buffers anywhere: the model's
/// verdict; on success `Xᵀ X` added to what the Hessian held on and above
/// its diagonal, within the header's bound of the sums computed here, and
/// mirrored below it (without rows, nothing written), nothing else
/// written, and the same bytes with every kernel forced.
fn accumulate(input: &mut Input, elem: Elem) {
    let (rows, cols) = (input.count(), input.count());
    let (x, x_len) = (input.place(), input.len());
    let (h, h_len) = (input.place(), input.len());
    let options = (input.u8() & 1 == 1).then(|| {
        let place = input.struct_place(size_of::<cq4_options>());
        (place, input.options())
    });
    let sizes = model::accumulate_sizes(rows, cols);
    let x_len = x.declare(x_len.resolve(sizes.map_or(0, |s| s.0)));
    let h_len = h.declare(h_len.resolve(sizes.map_or(0, |s| s.1)));

    let mut arena = Arena::default();
    let fill = input.u8();
    arena.fill(fill, input.rest());
    let options_place = options.map_or(Place::Null, |(p, _)| p);
    if let Some((Place::At(off), o)) = options {
        arena.write(off, o);
    }
    let before = arena.bytes().to_vec();

    let x_buf = match elem {
        Elem::F32 => Buf::input::<f32>(arena.addr(x), x_len),
        _ => Buf::input::<u16>(arena.addr(x), x_len),
    };
    let mut bufs = [
        x_buf,
        // Read, then written: an output to the checks.
        Buf::output::<f64>(arena.addr(h), h_len),
        Buf::value_in::<cq4_options>(arena.addr(options_place)).optional(),
    ];
    let verdict = (|| {
        model::pointers(&bufs)?;
        model::options(read_back(&before, options_place))?;
        let (x_n, h_n) = sizes?;
        bufs[0] = bufs[0].touching(x_n);
        bufs[1] = bufs[1].touching(h_n);
        model::extents(&bufs)
    })();

    let p_x = arena.ptr::<u8>(x).cast_const();
    let p_h = arena.ptr::<f64>(h);
    let p_options = arena.ptr::<cq4_options>(options_place).cast_const();
    let call = |forced: Option<*const cq4_options>| {
        let o = forced.unwrap_or(p_options);
        // SAFETY: every pointer is NULL, dangling with length 0, or inside
        // the arena; `safe` let through only calls whose prefixes lie in it.
        unsafe {
            match elem {
                Elem::F32 => {
                    cq4_hessian_accumulate_f32(p_x.cast(), x_len, rows, cols, p_h, h_len, o)
                }
                Elem::F16 => {
                    cq4_hessian_accumulate_f16(p_x.cast(), x_len, rows, cols, p_h, h_len, o)
                }
                Elem::Bf16 => {
                    cq4_hessian_accumulate_bf16(p_x.cast(), x_len, rows, cols, p_h, h_len, o)
                }
            }
        }
    };
    if !call_checked(&arena, &before, verdict, &bufs, || call(None)) {
        return;
    }
    let h_range = prefix_range(&arena, &bufs[1]);
    unchanged_outside(&before, arena.bytes(), std::slice::from_ref(&h_range));
    let after = arena.bytes().to_vec();

    let x_off = prefix_range(&arena, &bufs[0]).start;
    let n = rows * cols;
    let values: Vec<f64> = match elem {
        Elem::F32 => read_array::<f32>(&before, x_off, n)
            .into_iter()
            .map(f64::from)
            .collect(),
        Elem::F16 => read_array::<u16>(&before, x_off, n)
            .into_iter()
            .map(|b| f64::from(f16::from_bits(b).to_f32()))
            .collect(),
        Elem::Bf16 => read_array::<u16>(&before, x_off, n)
            .into_iter()
            .map(|b| f64::from(bf16::from_bits(b).to_f32()))
            .collect(),
    };
    let was: Vec<f64> = read_array(&before, h_range.start, cols * cols);
    let got: Vec<f64> = read_array(&after, h_range.start, cols * cols);
    let unit = 2f64.powi(-53);
    for i in 0..cols {
        for j in 0..cols {
            let (at, mirror) = (i * cols + j, j * cols + i);
            if rows == 0 {
                assert_eq!(
                    got[at].to_bits(),
                    was[at].to_bits(),
                    "no rows: H[{i}][{j}] kept"
                );
                continue;
            }
            assert_eq!(
                got[at].to_bits(),
                got[mirror].to_bits(),
                "H[{i}][{j}] symmetric"
            );
            let column = |c: usize| values.iter().skip(c).step_by(cols);
            let products = || column(i).zip(column(j)).map(|(a, b)| a * b);
            // The upper triangle is summed, then mirrored.
            let upper = i.min(j) * cols + i.max(j);
            let want = was[upper] + products().sum::<f64>();
            let abs = was[upper].abs() + products().map(f64::abs).sum::<f64>();
            // Where sums may overflow in one order and not another, or
            // NaN and infinities meet, no bound is stated.
            if abs.is_nan() || abs > f64::MAX / 4.0 {
                continue;
            }
            // The library and these sums, each within (rows + 1) roundings
            // of the exact sum of the entry and the products.
            let bound = 2.0 * (rows + 1) as f64 * unit * abs;
            assert!(
                (got[at] - want).abs() <= bound,
                "H[{i}][{j}] = {}, want {want} within {bound}",
                got[at]
            );
        }
    }
    for &kernel in kernels() {
        let o = forcing(kernel);
        run::again(
            &mut arena,
            &before,
            &after,
            format_args!("kernel {kernel}"),
            || call(Some(&o)),
        );
    }
}
