//! Unpack: `cq4_unpack_f32`, `cq4_unpack_f16`, `cq4_unpack_bf16`,
//! `cq4_unpack_f32_ex`, `cq4_unpack_f16_ex`, `cq4_unpack_bf16_ex` (the
//! first input byte chooses). On success: every element is `(u - 8) *
//! scale`, rounded to f16 or bf16 where asked, and every kernel gives the
//! bytes of the first call.

#![no_main]

use cortex_q4::ffi::*;
use cq4_fuzz::arena::read_array;
use cq4_fuzz::run::{
    call_checked, forcing, kernels, prefix_range, read_back, same_or_nan, unchanged_outside,
};
use cq4_fuzz::{model, reference, run, Arena, Buf, Input, Place};
use half::{bf16, f16};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| unpack(data));

#[derive(Clone, Copy, PartialEq, Eq)]
enum Elem {
    F32,
    F16,
    Bf16,
}

fn unpack(data: &[u8]) {
    let mut input = Input::new(data);
    let entry = input.u8() % 6;
    let elem = [Elem::F32, Elem::F16, Elem::Bf16][usize::from(entry % 3)];
    let ex = entry >= 3;
    let (rows, cols, g) = (input.count(), input.count(), input.group_size());
    let (packed, packed_len) = (input.place(), input.len());
    let (scales, scales_len) = (input.place(), input.len());
    let (dst, dst_len) = (input.place(), input.len());
    let options = ex.then(|| {
        let place = input.struct_place(size_of::<cq4_options>());
        (place, input.options())
    });

    let layout = model::layout(rows, cols, g);
    let need = |f: fn(&model::Layout) -> usize| layout.as_ref().map_or(0, f);
    let packed_len = packed.declare(packed_len.resolve(need(|l| l.packed_len)));
    let scales_len = scales.declare(scales_len.resolve(need(|l| l.scales_len)));
    let dst_len = dst.declare(dst_len.resolve(need(|l| l.elements)));

    let mut arena = Arena::default();
    let fill = input.u8();
    arena.fill(fill, input.rest());
    let options_place = options.map_or(Place::Null, |(p, _)| p);
    if let Some((Place::At(off), o)) = options {
        arena.write(off, o);
    }
    let before = arena.bytes().to_vec();

    let dst_buf = match elem {
        Elem::F32 => Buf::output::<f32>(arena.addr(dst), dst_len),
        _ => Buf::output::<u16>(arena.addr(dst), dst_len),
    };
    let bufs = [
        Buf::input::<u8>(arena.addr(packed), packed_len).touching(need(|l| l.packed_len)),
        Buf::input::<f32>(arena.addr(scales), scales_len).touching(need(|l| l.scales_len)),
        dst_buf.touching(need(|l| l.elements)),
        Buf::value_in::<cq4_options>(arena.addr(options_place)).optional(),
    ];
    let verdict = (|| {
        model::pointers(&bufs)?;
        model::options(read_back(&before, options_place))?;
        layout?;
        model::extents(&bufs)
    })();

    let p_packed = arena.ptr::<u8>(packed).cast_const();
    let p_scales = arena.ptr::<f32>(scales).cast_const();
    let p_dst = arena.ptr::<u8>(dst);
    let p_options = arena.ptr::<cq4_options>(options_place).cast_const();
    // The call as the input chose it (`forced` None), or with options
    // forcing a kernel: the plain functions then become their _ex twins.
    let call = |forced: Option<*const cq4_options>| {
        let (f32s, halves) = (p_dst.cast::<f32>(), p_dst.cast::<u16>());
        let o = forced.unwrap_or(p_options);
        let (p, pl, s, sl) = (p_packed, packed_len, p_scales, scales_len);
        // SAFETY: every pointer is NULL, dangling with length 0, or inside
        // the arena; `safe` let through only calls whose prefixes lie in it.
        unsafe {
            match (elem, ex || forced.is_some()) {
                (Elem::F32, false) => cq4_unpack_f32(p, pl, s, sl, rows, cols, g, f32s, dst_len),
                (Elem::F16, false) => cq4_unpack_f16(p, pl, s, sl, rows, cols, g, halves, dst_len),
                (Elem::Bf16, false) => {
                    cq4_unpack_bf16(p, pl, s, sl, rows, cols, g, halves, dst_len)
                }
                (Elem::F32, true) => {
                    cq4_unpack_f32_ex(p, pl, s, sl, rows, cols, g, f32s, dst_len, o)
                }
                (Elem::F16, true) => {
                    cq4_unpack_f16_ex(p, pl, s, sl, rows, cols, g, halves, dst_len, o)
                }
                (Elem::Bf16, true) => {
                    cq4_unpack_bf16_ex(p, pl, s, sl, rows, cols, g, halves, dst_len, o)
                }
            }
        }
    };
    if !call_checked(&arena, &before, verdict, &bufs, || call(None)) {
        return;
    }
    let Ok(l) = layout else { unreachable!() };
    let dst_range = prefix_range(&arena, &bufs[2]);
    unchanged_outside(&before, arena.bytes(), std::slice::from_ref(&dst_range));
    let after = arena.bytes().to_vec();

    let packed_bytes: Vec<u8> =
        read_array(&before, prefix_range(&arena, &bufs[0]).start, l.packed_len);
    let scale_values: Vec<f32> =
        read_array(&before, prefix_range(&arena, &bufs[1]).start, l.scales_len);
    let want = reference::unpack(&packed_bytes, &scale_values, &l);
    // f16 and bf16: each f32 result rounded to nearest even.
    let got: Vec<f32> = match elem {
        Elem::F32 => read_array(&after, dst_range.start, l.elements),
        Elem::F16 => read_array(&after, dst_range.start, l.elements)
            .into_iter()
            .map(|h| f16::from_bits(h).to_f32())
            .collect(),
        Elem::Bf16 => read_array(&after, dst_range.start, l.elements)
            .into_iter()
            .map(|h| bf16::from_bits(h).to_f32())
            .collect(),
    };
    for (i, (&got, &w)) in got.iter().zip(&want).enumerate() {
        let want = match elem {
            Elem::F32 => w,
            Elem::F16 => f16::from_f32(w).to_f32(),
            Elem::Bf16 => bf16::from_f32(w).to_f32(),
        };
        assert!(
            same_or_nan(got, want),
            "element {i}: {got:e}, want {want:e}"
        );
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
