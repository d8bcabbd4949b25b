//! Quality: `cq4_quality_f32`, `cq4_quality_f16`, `cq4_quality_bf16` (the
//! first input byte chooses). On success: the four numbers the header
//! defines, from f64 sums over `original - unpacked` (up to the sums'
//! rounding; the maximum exactly), written to `*out` only.

#![no_main]

use cortex_q4::ffi::*;
use cq4_fuzz::arena::{read_array, read_struct};
use cq4_fuzz::run::{call_checked, prefix_range, unchanged_outside};
use cq4_fuzz::{model, reference, Arena, Buf, Input};
use half::{bf16, f16};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| quality(data));

#[derive(Clone, Copy, PartialEq, Eq)]
enum Elem {
    F32,
    F16,
    Bf16,
}

fn quality(data: &[u8]) {
    let mut input = Input::new(data);
    let elem = [Elem::F32, Elem::F16, Elem::Bf16][usize::from(input.u8() % 3)];
    let (rows, cols, g) = (input.count(), input.count(), input.group_size());
    let (original, original_len) = (input.place(), input.len());
    let (packed, packed_len) = (input.place(), input.len());
    let (scales, scales_len) = (input.place(), input.len());
    let out = input.struct_place(size_of::<cq4_quality>());

    let layout = model::layout(rows, cols, g);
    let need = |f: fn(&model::Layout) -> usize| layout.as_ref().map_or(0, f);
    let original_len = original.declare(original_len.resolve(need(|l| l.elements)));
    let packed_len = packed.declare(packed_len.resolve(need(|l| l.packed_len)));
    let scales_len = scales.declare(scales_len.resolve(need(|l| l.scales_len)));

    let mut arena = Arena::default();
    let fill = input.u8();
    arena.fill(fill, input.rest());
    let before = arena.bytes().to_vec();

    let original_buf = match elem {
        Elem::F32 => Buf::input::<f32>(arena.addr(original), original_len),
        _ => Buf::input::<u16>(arena.addr(original), original_len),
    };
    let bufs = [
        original_buf.touching(need(|l| l.elements)),
        Buf::input::<u8>(arena.addr(packed), packed_len).touching(need(|l| l.packed_len)),
        Buf::input::<f32>(arena.addr(scales), scales_len).touching(need(|l| l.scales_len)),
        Buf::value_out::<cq4_quality>(arena.addr(out)),
    ];
    let verdict = (|| {
        model::pointers(&bufs)?;
        layout?;
        model::extents(&bufs)
    })();

    let p_original = arena.ptr::<u8>(original).cast_const();
    let p_packed = arena.ptr::<u8>(packed).cast_const();
    let p_scales = arena.ptr::<f32>(scales).cast_const();
    let p_out = arena.ptr::<cq4_quality>(out);
    // SAFETY: every pointer is NULL, dangling with length 0, or inside the
    // arena; `safe` let through only calls whose prefixes lie in it.
    let call = || unsafe {
        let (p, pl, s, sl) = (p_packed, packed_len, p_scales, scales_len);
        let (o, ol) = (p_original, original_len);
        match elem {
            Elem::F32 => cq4_quality_f32(o.cast(), ol, p, pl, s, sl, rows, cols, g, p_out),
            Elem::F16 => cq4_quality_f16(o.cast(), ol, p, pl, s, sl, rows, cols, g, p_out),
            Elem::Bf16 => cq4_quality_bf16(o.cast(), ol, p, pl, s, sl, rows, cols, g, p_out),
        }
    };
    if !call_checked(&arena, &before, verdict, &bufs, call) {
        return;
    }
    let Ok(l) = layout else { unreachable!() };
    let out_range = prefix_range(&arena, &bufs[3]);
    unchanged_outside(&before, arena.bytes(), std::slice::from_ref(&out_range));

    let start = |i: usize| prefix_range(&arena, &bufs[i]).start;
    let values: Vec<f32> = match elem {
        Elem::F32 => read_array(&before, start(0), l.elements),
        Elem::F16 => read_array(&before, start(0), l.elements)
            .into_iter()
            .map(|h| f16::from_bits(h).to_f32())
            .collect(),
        Elem::Bf16 => read_array(&before, start(0), l.elements)
            .into_iter()
            .map(|h| bf16::from_bits(h).to_f32())
            .collect(),
    };
    let packed_bytes: Vec<u8> = read_array(&before, start(1), l.packed_len);
    let scale_values: Vec<f32> = read_array(&before, start(2), l.scales_len);
    let unpacked = reference::unpack(&packed_bytes, &scale_values, &l);
    let want = reference::quality(&values, &unpacked);
    let q: cq4_quality = read_struct(arena.bytes(), out_range.start);
    let got = [q.rmse, q.max_abs_error, q.relative_frobenius, q.snr_db];
    let names = ["rmse", "max_abs_error", "relative_frobenius", "snr_db"];
    for ((name, got), want) in names.into_iter().zip(got).zip(want) {
        // Sums of up to 2^9 terms in another order: well within 1e-12.
        let close = if want.is_finite() {
            (got - want).abs() <= 1e-12 * want.abs()
                || (name == "snr_db" && (got - want).abs() <= 1e-10)
        } else {
            got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan())
        };
        assert!(close, "{name} = {got:e}, want {want:e}");
    }
    assert!(
        q.max_abs_error.to_bits() == want[1].to_bits() || want[1].is_nan(),
        "max_abs_error is a maximum: exact"
    );
}
