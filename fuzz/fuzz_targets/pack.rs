//! Pack: `cq4_pack_f32`, `cq4_pack_f16`, `cq4_pack_bf16`, `cq4_pack_f32_ex`,
//! `cq4_pack_f16_ex`, `cq4_pack_bf16_ex`, `cq4_pack_encoded_f32`,
//! `cq4_pack_encoded_f16`, `cq4_pack_encoded_bf16` (the first input byte
//! chooses). On success: the default encoder's bytes are the format's
//! definition, and every kernel gives the bytes of the first call.

#![no_main]

use cortex_q4::ffi::*;
use cq4_fuzz::arena::read_array;
use cq4_fuzz::run::{call_checked, forcing, kernels, prefix_range, read_back, unchanged_outside};
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
    let entry = input.u8() % 9;
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
        let importance = arena.ptr::<f32>(e.importance).cast_const();
        let c = cq4_encoder_options {
            struct_size: e.struct_size,
            encoder: e.encoder,
            importance,
            importance_len: e.importance.declare(e.importance_len.resolve(cols)),
        };
        if let Place::At(off) = place {
            arena.write(off, c);
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
        // The importance weights, once the encoder options are read.
        Buf::input::<f32>(0, 0).optional(),
    ];
    let mut encoder_read = None;
    let verdict = (|| {
        model::pointers(&bufs[..5])?;
        model::options(read_back(&before, options_place))?;
        let e: Option<cq4_encoder_options> = read_back(&before, encoder_place);
        encoder_read = e;
        model::encoder(e)?;
        layout?;
        if let Some(e) = e {
            bufs[5] = Buf::input::<f32>(e.importance.addr(), e.importance_len)
                .optional()
                .touching(cols);
        }
        model::extents(&bufs)?;
        let weights = &bufs[5];
        if weights.given() && arena.holds(weights.addr, cols * 4) {
            let off = arena.offset(weights.addr).unwrap_or(0);
            let w: Vec<f32> = read_array(&before, off, cols);
            if w.iter().any(|&v| v < 0.0 || !v.is_finite()) {
                return Err(cq4_status::CQ4_ERR_BAD_IMPORTANCE);
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
    if !call_checked(&arena, &before, verdict, &bufs, || call(None)) {
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
