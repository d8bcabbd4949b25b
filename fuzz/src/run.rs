//! Making a call and holding it to the model: the status it must return,
//! nothing written on an error, and the same bytes again when the call is
//! repeated with each kernel forced.

use std::fmt::Display;
use std::ops::Range;
use std::sync::OnceLock;

use cortex_q4::ffi::cq4_status::{self, *};
use cortex_q4::ffi::{
    cq4_kernel, cq4_kernel_supported, cq4_matrix, cq4_options, cq4_options_default,
};

use crate::arena::{read_struct, Arena, CStruct, Place};
use crate::model::{Buf, Layout, Verdict};

/// The kernel ids other than AUTO that run on this CPU, the scalar
/// reference (1) first.
pub fn kernels() -> &'static [u32] {
    static IDS: OnceLock<Vec<u32>> = OnceLock::new();
    let ids = 1..=cq4_kernel::CQ4_KERNEL_NEON_I8MM as u32;
    IDS.get_or_init(|| ids.filter(|&k| cq4_kernel_supported(k) == 1).collect())
}

/// Options forcing `kernel` on the calling thread.
pub fn forcing(kernel: u32) -> cq4_options {
    cq4_options {
        kernel,
        ..cq4_options_default()
    }
}

/// The descriptor of a `[rows, cols]` matrix at `group_size` whose
/// buffers are `packed` and `scales` (place, declared length) of `arena`,
/// written at `place` when that lies in the arena.
pub fn place_matrix(
    arena: &mut Arena,
    place: Place,
    (packed, packed_len): (Place, usize),
    (scales, scales_len): (Place, usize),
    (rows, cols, group_size): (usize, usize, usize),
) -> cq4_matrix {
    let matrix = cq4_matrix {
        packed: arena.ptr::<u8>(packed).cast_const(),
        packed_len,
        scales: arena.ptr::<f32>(scales).cast_const(),
        scales_len,
        rows,
        cols,
        group_size,
    };
    if let Place::At(off) = place {
        arena.write(off, matrix);
    }
    matrix
}

/// The two buffers of the matrix a call reads through `*w`, as the arena
/// held `*w` before the call (`given` where `*w` is not in the arena):
/// their declared lengths, and the prefixes `layout` makes the call touch.
pub fn matrix_buffers(
    before: &[u8],
    place: Place,
    given: cq4_matrix,
    layout: Option<&Layout>,
) -> [Buf; 2] {
    let m: cq4_matrix = read_back(before, place).unwrap_or(given);
    [
        Buf::input::<u8>(m.packed.addr(), m.packed_len)
            .touching(layout.map_or(0, |l| l.packed_len)),
        Buf::input::<f32>(m.scales.addr(), m.scales_len)
            .touching(layout.map_or(0, |l| l.scales_len)),
    ]
}

/// The struct a checked pointer at `place` points to, as the arena held it
/// before the call (`None` for NULL).
pub fn read_back<T: CStruct>(before: &[u8], place: Place) -> Option<T> {
    match place {
        Place::Null => None,
        Place::At(off) => Some(read_struct(before, off)),
        Place::Dangling(_) => unreachable!("a dangling struct pointer passed the model's checks"),
    }
}

/// Whether the call may be made: one that the model says runs (or only
/// refuses once it has read values) must find every prefix it touches in
/// the arena; one refused earlier reads nothing.
pub fn safe(arena: &Arena, verdict: Verdict, bufs: &[Buf]) -> bool {
    let reads = matches!(
        verdict,
        Ok(()) | Err(CQ4_ERR_BAD_IMPORTANCE | CQ4_ERR_BAD_HESSIAN)
    );
    !reads
        || bufs.iter().all(|b| {
            !b.given()
                || b.prefix_bytes()
                    .is_some_and(|n| n == 0 || arena.holds(b.addr, n))
        })
}

/// Makes the call (when [`safe`]) and holds its status to `verdict`; on an
/// error the arena must be byte for byte as `before`. Returns whether the
/// call succeeded.
pub fn call_checked(
    arena: &Arena,
    before: &[u8],
    verdict: Verdict,
    bufs: &[Buf],
    call: impl FnOnce() -> cq4_status,
) -> bool {
    if !safe(arena, verdict, bufs) {
        return false;
    }
    let status = call();
    match verdict {
        Err(want) => {
            assert_eq!(status, want, "status (model: {want:?})");
            same_bytes(before, arena.bytes(), &format!("refused with {status:?}"));
            false
        }
        Ok(()) => {
            assert_eq!(status, CQ4_OK, "status (model: OK)");
            true
        }
    }
}

/// As [`call_checked`] for a call that the model lets either run or refuse
/// with `or` (a value too close to call): on `or`, nothing written.
pub fn call_either(
    arena: &Arena,
    before: &[u8],
    bufs: &[Buf],
    or: cq4_status,
    call: impl FnOnce() -> cq4_status,
) -> bool {
    if !safe(arena, Ok(()), bufs) {
        return false;
    }
    let status = call();
    if status == or {
        same_bytes(before, arena.bytes(), &format!("refused with {status:?}"));
        return false;
    }
    assert_eq!(status, CQ4_OK, "status (model: OK or {or:?})");
    true
}

/// Restores the arena to `before`, repeats a call that succeeded in
/// another way (`what`) and requires the bytes it left, `after`.
pub fn again(
    arena: &mut Arena,
    before: &[u8],
    after: &[u8],
    what: impl Display,
    call: impl FnOnce() -> cq4_status,
) {
    arena.bytes_mut().copy_from_slice(before);
    assert_eq!(call(), CQ4_OK, "{what}");
    same_bytes(after, arena.bytes(), &what.to_string());
}

/// Asserts `got == want`, naming the first byte that differs.
pub fn same_bytes(want: &[u8], got: &[u8], what: &str) {
    if want == got {
        return;
    }
    let i = want.iter().zip(got).position(|(a, b)| a != b).unwrap_or(0);
    panic!(
        "{what}: arena byte {i} is {:#04x}, want {:#04x}",
        got[i], want[i]
    );
}

/// Asserts that a successful call changed no byte outside `written`
/// (arena byte ranges).
pub fn unchanged_outside(before: &[u8], after: &[u8], written: &[Range<usize>]) {
    let mut kept = vec![true; before.len()];
    for r in written {
        kept[r.clone()].fill(false);
    }
    let mut start = 0;
    // Compare the unwritten stretches, each as one slice.
    for run in kept.chunk_by(|a, b| a == b) {
        let end = start + run.len();
        if run[0] && before[start..end] != after[start..end] {
            let i = (start..end)
                .find(|&i| before[i] != after[i])
                .unwrap_or(start);
            panic!(
                "byte {i}, outside the outputs, changed: {:#04x} -> {:#04x}",
                before[i], after[i]
            );
        }
        start = end;
    }
}

/// The arena byte range of a buffer's prefix (it lies inside: [`safe`]).
pub fn prefix_range(arena: &Arena, b: &Buf) -> Range<usize> {
    match arena.offset(b.addr) {
        Some(off) => off..off + b.used * b.size,
        None => 0..0,
    }
}

/// The same value, or both NaN (whose payload the header leaves open).
pub fn same_or_nan(got: f32, want: f32) -> bool {
    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan())
}
