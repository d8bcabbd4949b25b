//! The small entry points: `cq4_layout_get`, `cq4_options_default`,
//! `cq4_encoder_options_default`, `cq4_kernel_supported`,
//! `cq4_kernel_auto`, `cq4_kernel_name`, `cq4_status_message`,
//! `cq4_version`, `cq4_abi_version`, `cq4_hessian_size` (the first input
//! byte chooses), each held to what the header says it returns.

#![no_main]

use std::ffi::{c_int, CStr};
use std::sync::OnceLock;

use cortex_q4::ffi::*;
use cq4_fuzz::arena::read_struct;
use cq4_fuzz::run::{call_checked, prefix_range, unchanged_outside};
use cq4_fuzz::{model, Arena, Buf, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| misc(data));

const HEADER: &str = include_str!("../../include/cortex_q4.h");

/// The replacement text of `#define name` in the header.
fn define(name: &str) -> &'static str {
    let prefix = format!("#define {name} ");
    HEADER
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in the header"))
        .trim()
}

/// Kernel names by id, as `cq4_kernel_name` documents them.
const NAMES: [&str; 8] = [
    "auto",
    "scalar",
    "avx2",
    "avx512",
    "neon",
    "avxvnni",
    "neondotprod",
    "neoni8mm",
];

/// Whether kernel id `id` runs here, from the CPU features the header
/// names for it.
fn runs_here(id: u32) -> bool {
    match id {
        0 | 1 => true,
        #[cfg(target_arch = "x86_64")]
        2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
        #[cfg(target_arch = "x86_64")]
        3 => {
            is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vl")
        }
        #[cfg(target_arch = "aarch64")]
        4 => std::arch::is_aarch64_feature_detected!("neon"),
        #[cfg(target_arch = "x86_64")]
        5 => runs_here(2) && is_x86_feature_detected!("avxvnni"),
        #[cfg(target_arch = "aarch64")]
        6 => runs_here(4) && std::arch::is_aarch64_feature_detected!("dotprod"),
        #[cfg(target_arch = "aarch64")]
        7 => runs_here(6) && std::arch::is_aarch64_feature_detected!("i8mm"),
        _ => false,
    }
}

fn string(p: *const std::ffi::c_char) -> &'static str {
    assert!(!p.is_null(), "NULL string");
    // SAFETY: the header promises a static NUL-terminated string.
    unsafe { CStr::from_ptr(p) }.to_str().expect("ASCII")
}

fn misc(data: &[u8]) {
    let mut input = Input::new(data);
    let entry = input.u8() % 10;
    let id = match input.u8() {
        b @ 0..=239 => u32::from(b % 8),
        _ => input.u32(),
    };
    match entry {
        0 => layout_get(&mut input),
        1 => {
            let o = cq4_options_default();
            let want = (size_of::<cq4_options>() as u32, 0, 1);
            assert_eq!((o.struct_size, o.kernel, o.threads), want);
        }
        2 => {
            let e = cq4_encoder_options_default();
            let size = size_of::<cq4_encoder_options>() as u32;
            assert_eq!((e.struct_size, e.encoder), (size, 0));
            assert!(e.importance.is_null() && e.importance_len == 0);
            assert!(e.hessian.is_null() && e.hessian_len == 0);
            assert_eq!(e.damping, model::DEFAULT_DAMPING);
        }
        3 => assert_eq!(
            cq4_kernel_supported(id),
            c_int::from(runs_here(id)),
            "kernel {id}"
        ),
        4 => {
            static AUTO: OnceLock<u32> = OnceLock::new();
            let auto = cq4_kernel_auto();
            assert!((1..6).contains(&auto) && runs_here(auto), "auto is {auto}");
            assert_eq!(auto, *AUTO.get_or_init(|| auto), "decided once per process");
        }
        5 => {
            let want = NAMES.get(id as usize).copied().unwrap_or("unknown");
            assert_eq!(string(cq4_kernel_name(id)), want, "kernel {id}");
        }
        6 => {
            let code = match input.u8() {
                b @ 0..=239 => c_int::from(b % 24) - 4,
                _ => input.u32() as c_int,
            };
            let message = string(cq4_status_message(code));
            // Statuses are 0 to 18 in the header.
            static KNOWN: OnceLock<Vec<&str>> = OnceLock::new();
            let known =
                KNOWN.get_or_init(|| (0..19).map(|c| string(cq4_status_message(c))).collect());
            match usize::try_from(code).ok().and_then(|c| known.get(c)) {
                Some(&m) => {
                    assert_eq!(message, m, "static and the same for {code}");
                    assert_eq!(
                        known.iter().filter(|&&k| k == m).count(),
                        1,
                        "{code}: its own message"
                    );
                    assert!(!m.is_empty() && m != "unknown cq4_status");
                }
                None => assert_eq!(message, "unknown cq4_status", "code {code}"),
            }
        }
        7 => {
            let v = string(cq4_version());
            assert_eq!(format!("\"{v}\""), define("CQ4_VERSION_STRING"));
            let parts = ["MAJOR", "MINOR", "PATCH"].map(|p| define(&format!("CQ4_VERSION_{p}")));
            assert_eq!(v, parts.join("."));
        }
        8 => assert_eq!(cq4_abi_version().to_string(), define("CQ4_ABI_VERSION")),
        _ => hessian_size(&mut input),
    }
}

/// `cq4_hessian_size` with `elements` anywhere: the model's verdict, and on
/// success `cols * cols` in `*elements` and nothing else written.
fn hessian_size(input: &mut Input) {
    let cols = input.count();
    let out = input.struct_place(size_of::<usize>());
    let mut arena = Arena::default();
    let fill = input.u8();
    arena.fill(fill, input.rest());
    let before = arena.bytes().to_vec();
    let bufs = [Buf::value_out::<usize>(arena.addr(out))];
    let verdict = (|| {
        model::pointers(&bufs)?;
        model::hessian_size(cols)?;
        model::extents(&bufs)
    })();
    let p = arena.ptr::<usize>(out);
    // SAFETY: `p` is NULL, misaligned and dangling (refused before any
    // write), or inside the arena with room for a size_t.
    if !call_checked(&arena, &before, verdict, &bufs, || unsafe {
        cq4_hessian_size(cols, p)
    }) {
        return;
    }
    let range = prefix_range(&arena, &bufs[0]);
    unchanged_outside(&before, arena.bytes(), std::slice::from_ref(&range));
    let got = usize::from_ne_bytes(arena.bytes()[range].try_into().unwrap());
    assert_eq!(got, cols * cols);
}

/// `cq4_layout_get` with `out` anywhere: the model's verdict, and on
/// success the header's formulas in `*out` and nothing else written.
fn layout_get(input: &mut Input) {
    let (rows, cols, g) = (input.count(), input.count(), input.group_size());
    let out = input.struct_place(size_of::<cq4_layout>());
    let mut arena = Arena::default();
    let fill = input.u8();
    arena.fill(fill, input.rest());
    let before = arena.bytes().to_vec();
    let bufs = [Buf::value_out::<cq4_layout>(arena.addr(out))];
    let layout = model::layout(rows, cols, g);
    let verdict = (|| {
        model::pointers(&bufs)?;
        layout?;
        model::extents(&bufs)
    })();
    let p = arena.ptr::<cq4_layout>(out);
    // SAFETY: `p` is NULL, misaligned and dangling (refused before any
    // write), or inside the arena with room for a cq4_layout.
    if !call_checked(&arena, &before, verdict, &bufs, || unsafe {
        cq4_layout_get(rows, cols, g, p)
    }) {
        return;
    }
    let range = prefix_range(&arena, &bufs[0]);
    unchanged_outside(&before, arena.bytes(), std::slice::from_ref(&range));
    let got: cq4_layout = read_struct(arena.bytes(), range.start);
    let Ok(l) = layout else { unreachable!() };
    let got = model::Layout {
        rows: got.rows,
        cols: got.cols,
        group_size: got.group_size,
        groups_per_row: got.groups_per_row,
        bytes_per_group: got.bytes_per_group,
        packed_row_bytes: got.packed_row_bytes,
        elements: got.elements,
        packed_len: got.packed_len,
        scales_len: got.scales_len,
    };
    assert_eq!(got, l);
}
