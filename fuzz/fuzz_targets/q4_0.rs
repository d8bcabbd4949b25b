//! GGML Q4_0: `cq4_q4_0_quantize_f32`, `cq4_q4_0_quantize_f32_ex`,
//! `cq4_q4_0_import`, `cq4_q4_0_export` (the first input byte chooses). On
//! success: import and export write the blocks, nibbles, scales and report
//! the header describes; quantize gives the same bytes with every kernel.

#![no_main]

use cortex_q4::ffi::*;
use cq4_fuzz::arena::{read_array, read_struct};
use cq4_fuzz::reference::{self, ExportCounts};
use cq4_fuzz::run::{call_checked, forcing, kernels, prefix_range, read_back, unchanged_outside};
use cq4_fuzz::{model, run, Arena, Buf, Input, Place};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| q4_0(data));

#[derive(Clone, Copy, PartialEq, Eq)]
enum Entry {
    Quantize,
    QuantizeEx,
    Import,
    Export,
}

fn q4_0(data: &[u8]) {
    let mut input = Input::new(data);
    let entry = [
        Entry::Quantize,
        Entry::QuantizeEx,
        Entry::Import,
        Entry::Export,
    ][usize::from(input.u8() % 4)];
    // Columns in whole blocks, mostly.
    let (rows, c) = (input.count(), input.count());
    let cols = if c < 8 && input.u8() & 3 != 0 {
        32 * c
    } else {
        c
    };
    // Three buffers: quantize's src and blocks; import's blocks, packed and
    // scales; export's packed, scales and blocks.
    let (a, a_len) = (input.place(), input.len());
    let (b, b_len) = (input.place(), input.len());
    let (c3, c3_len) = (input.place(), input.len());
    let extra = match entry {
        Entry::QuantizeEx => input.struct_place(size_of::<cq4_options>()),
        Entry::Export => input.struct_place(size_of::<cq4_q4_0_report>()),
        _ => Place::Null,
    };
    let options = input.options();

    let shape = model::q4_0_layout(rows, cols);
    let need = |f: fn(&(model::Layout, usize)) -> usize| shape.as_ref().map_or(0, f);
    let (elements, packed_n, scales_n, blocks_n) = (
        need(|s| s.0.elements),
        need(|s| s.0.packed_len),
        need(|s| s.0.scales_len),
        need(|s| s.1),
    );
    let (a_len, b_len, c3_len) = match entry {
        Entry::Quantize | Entry::QuantizeEx => {
            (a_len.resolve(elements), b_len.resolve(blocks_n), 0)
        }
        Entry::Import => (
            a_len.resolve(blocks_n),
            b_len.resolve(packed_n),
            c3_len.resolve(scales_n),
        ),
        Entry::Export => (
            a_len.resolve(packed_n),
            b_len.resolve(scales_n),
            c3_len.resolve(blocks_n),
        ),
    };
    let (a_len, b_len, c3_len) = (a.declare(a_len), b.declare(b_len), c3.declare(c3_len));

    let mut arena = Arena::default();
    let fill = input.u8();
    arena.fill(fill, input.rest());
    if let (Entry::QuantizeEx, Place::At(off)) = (entry, extra) {
        arena.write(off, options);
    }
    let before = arena.bytes().to_vec();

    let (pa, pb, pc) = (arena.ptr::<u8>(a), arena.ptr::<u8>(b), arena.ptr::<u8>(c3));
    let p_extra = arena.ptr::<u8>(extra);
    let (aa, ab, ac, ax) = (
        arena.addr(a),
        arena.addr(b),
        arena.addr(c3),
        arena.addr(extra),
    );
    let bufs: Vec<Buf> = match entry {
        Entry::Quantize | Entry::QuantizeEx => vec![
            Buf::input::<f32>(aa, a_len).touching(elements),
            Buf::output::<u8>(ab, b_len).touching(blocks_n),
            Buf::value_in::<cq4_options>(ax).optional(),
        ],
        Entry::Import => vec![
            Buf::input::<u8>(aa, a_len).touching(blocks_n),
            Buf::output::<u8>(ab, b_len).touching(packed_n),
            Buf::output::<f32>(ac, c3_len).touching(scales_n),
        ],
        Entry::Export => vec![
            Buf::input::<u8>(aa, a_len).touching(packed_n),
            Buf::input::<f32>(ab, b_len).touching(scales_n),
            Buf::output::<u8>(ac, c3_len).touching(blocks_n),
            Buf::value_out::<cq4_q4_0_report>(ax).optional(),
        ],
    };
    let verdict = (|| {
        model::pointers(&bufs)?;
        if entry == Entry::QuantizeEx {
            model::options(read_back(&before, extra))?;
        }
        shape?;
        model::extents(&bufs)
    })();

    let call = |forced: Option<*const cq4_options>| {
        // SAFETY: every pointer is NULL, dangling with length 0, or inside
        // the arena; `safe` let through only calls whose prefixes lie in it.
        unsafe {
            match (entry, forced) {
                (Entry::Quantize, None) => {
                    cq4_q4_0_quantize_f32(pa.cast(), a_len, rows, cols, pb, b_len)
                }
                (Entry::Quantize | Entry::QuantizeEx, Some(o)) => {
                    cq4_q4_0_quantize_f32_ex(pa.cast(), a_len, rows, cols, pb, b_len, o)
                }
                (Entry::QuantizeEx, None) => cq4_q4_0_quantize_f32_ex(
                    pa.cast(),
                    a_len,
                    rows,
                    cols,
                    pb,
                    b_len,
                    p_extra.cast(),
                ),
                (Entry::Import, _) => {
                    cq4_q4_0_import(pa, a_len, rows, cols, pb, b_len, pc.cast(), c3_len)
                }
                (Entry::Export, _) => cq4_q4_0_export(
                    pa,
                    a_len,
                    pb.cast(),
                    b_len,
                    rows,
                    cols,
                    pc,
                    c3_len,
                    p_extra.cast(),
                ),
            }
        }
    };
    if !call_checked(&arena, &before, verdict, &bufs, || call(None)) {
        return;
    }
    let written: Vec<_> = bufs
        .iter()
        .filter(|b| b.out && b.given())
        .map(|b| prefix_range(&arena, b))
        .collect();
    unchanged_outside(&before, arena.bytes(), &written);
    let after = arena.bytes().to_vec();
    let range = |i: usize| prefix_range(&arena, &bufs[i]);

    match entry {
        Entry::Quantize | Entry::QuantizeEx => {
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
        Entry::Import => {
            let (want_packed, want_scales) = reference::q4_0_import(&before[range(0)]);
            assert_eq!(&after[range(1)], &want_packed[..], "imported nibbles");
            let got: Vec<f32> = read_array(&after, range(2).start, scales_n);
            let bits = |s: &[f32]| s.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want_scales), "imported scales");
        }
        Entry::Export => {
            let scales: Vec<f32> = read_array(&before, range(1).start, scales_n);
            let (want_blocks, counts) = reference::q4_0_export(&before[range(0)], &scales);
            let got = &after[range(2)];
            for (i, (g, w)) in got.chunks(18).zip(want_blocks.chunks(18)).enumerate() {
                let d = |b: &[u8]| half::f16::from_bits(u16::from_le_bytes([b[0], b[1]]));
                let same_d = d(g).to_bits() == d(w).to_bits() || (d(g).is_nan() && d(w).is_nan());
                assert!(same_d && g[2..] == w[2..], "block {i}: {g:?}, want {w:?}");
            }
            if let Some(off) = arena.offset(ax) {
                let r: cq4_q4_0_report = read_struct(&after, off);
                let got = ExportCounts {
                    overflowed: r.overflowed,
                    subnormal_loss: r.subnormal_loss,
                    rounded: r.rounded,
                };
                assert_eq!((r.scales, got), (scales_n, counts), "report");
            }
        }
    }
}
