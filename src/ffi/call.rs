//! The one checked path of every `cq4_` call that takes pointers. A call
//! declares each of its buffers once, as an input, an output or both
//! ([`Buf`]), and says how much of each it touches; [`checked`] runs every
//! check in the order the header documents, and only then builds slices,
//! over the touched prefixes alone.

use std::mem::{align_of, size_of};
use std::ops::Range;

use super::cq4_status::{self, *};
use super::guard;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    In,
    Out,
    /// Read, then written: an output for overlap and lengths.
    InOut,
}

impl Dir {
    fn writes(self) -> bool {
        self != Dir::In
    }
}

/// A caller's buffer: its pointer, its declared length and, once the
/// call's shape is known, the extent the call touches.
pub(super) struct Buf<T> {
    ptr: *const T,
    len: usize,
    dir: Dir,
    /// NULL is an error; otherwise it means "not given".
    required: bool,
    used: usize,
    /// Bytes per element: `size_of::<T>()`, or the size a versioned
    /// struct declares ([`Buf::declare_bytes`]).
    size: usize,
}

impl<T> Buf<T> {
    fn new(ptr: *const T, len: usize, dir: Dir, used: usize) -> Self {
        Buf {
            ptr,
            len,
            dir,
            required: true,
            used,
            size: size_of::<T>(),
        }
    }

    /// An array the call reads; its extent comes from [`Buf::touch`].
    pub(super) fn input(ptr: *const T, len: usize) -> Self {
        Self::new(ptr, len, Dir::In, 0)
    }

    /// An array the call writes; its extent comes from [`Buf::touch`].
    pub(super) fn output(ptr: *mut T, len: usize) -> Self {
        Self::new(ptr.cast_const(), len, Dir::Out, 0)
    }

    /// An array the call reads and then writes (adds into); its extent
    /// comes from [`Buf::touch`]. Checked as an output.
    pub(super) fn in_out(ptr: *mut T, len: usize) -> Self {
        Self::new(ptr.cast_const(), len, Dir::InOut, 0)
    }

    /// One struct the call reads.
    pub(super) fn value_in(ptr: *const T) -> Self {
        Self::new(ptr, 1, Dir::In, 1)
    }

    /// One struct the call writes, last.
    pub(super) fn value_out(ptr: *mut T) -> Self {
        Self::new(ptr.cast_const(), 1, Dir::Out, 1)
    }

    /// This buffer, with NULL meaning "not given".
    pub(super) fn optional(self) -> Self {
        Buf {
            required: false,
            ..self
        }
    }

    /// No buffer, or none known yet.
    pub(super) fn none() -> Self {
        Self::input(std::ptr::null(), 0).optional()
    }

    pub(super) fn is_given(&self) -> bool {
        !self.ptr.is_null()
    }

    /// Sets the extent the call reads or writes, in elements.
    pub(super) fn touch(&mut self, used: usize) {
        self.used = used;
    }

    /// For one struct whose first field states its size, so that a caller
    /// compiled against an older, shorter version passes that one: counts
    /// it as the `bytes` the caller declared (its overlap with the
    /// outputs), read first with [`Buf::read_as`].
    pub(super) fn declare_bytes(&mut self, bytes: usize) {
        debug_assert_eq!((self.len, self.used), (1, 1));
        self.size = bytes;
    }

    pub(super) fn arg(&self) -> Arg {
        Arg {
            addr: self.ptr as usize,
            align: align_of::<T>(),
            size: self.size,
            len: self.len,
            used: self.used,
            dir: self.dir,
            required: self.required,
        }
    }

    /// The NULL and alignment checks of this one pointer, for one that a
    /// struct holds (checked when the struct is read).
    pub(super) fn check_pointer(&self) -> Result<(), cq4_status> {
        check_pointers(&[self.arg()])
    }

    /// The struct, or `None` when an optional one is not given.
    ///
    /// # Safety
    /// The pointer passed [`check_pointers`], and the caller of the
    /// `extern "C"` function promised it readable.
    pub(super) unsafe fn read(&self) -> Option<T>
    where
        T: Copy,
    {
        // SAFETY: non-null (tested), aligned (checked), readable (the
        // caller's promise).
        self.is_given().then(|| unsafe { self.ptr.read() })
    }

    /// Bytes per element, as the checks count them.
    #[cfg(test)]
    pub(super) fn element_bytes(&self) -> usize {
        self.size
    }

    /// The first `size_of::<U>()` bytes of the struct, read as a `U` at
    /// any alignment, or `None` when not given: the fields of a versioned
    /// struct that the caller's version declares.
    ///
    /// # Safety
    /// As [`Buf::read`], and those bytes lie inside what the caller
    /// declared readable.
    pub(super) unsafe fn read_as<U: Copy>(&self) -> Option<U> {
        // SAFETY: non-null (tested), readable for `size_of::<U>()` bytes
        // (the caller's promise); unaligned reads are allowed.
        self.is_given()
            .then(|| unsafe { self.ptr.cast::<U>().read_unaligned() })
    }

    /// A copy of the first `N` elements, when given and its declared
    /// length holds them.
    ///
    /// # Safety
    /// As [`Buf::read`].
    pub(super) unsafe fn read_prefix<const N: usize>(&self) -> Option<[T; N]>
    where
        T: Copy,
    {
        // SAFETY: non-null (tested), readable for its declared length (the
        // caller's promise), which holds N elements (tested).
        (self.is_given() && self.len >= N)
            .then(|| unsafe { self.ptr.cast::<[T; N]>().read_unaligned() })
    }

    /// The touched prefix (empty when not given).
    ///
    /// # Safety
    /// Only from [`Call::run`]: [`checked`] proved the prefix inside the
    /// declared length and disjoint from every output; the caller of the
    /// `extern "C"` function promised the declared length readable.
    pub(super) unsafe fn slice<'a>(&self) -> &'a [T] {
        if !self.is_given() {
            return &[];
        }
        // SAFETY: as the function's contract says; `used * size_of::<T>()`
        // was checked to fit `isize`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.used) }
    }

    /// The touched prefix of an output.
    ///
    /// # Safety
    /// As [`Buf::slice`], for writes: no other buffer of the call shares a
    /// byte with this prefix.
    pub(super) unsafe fn slice_mut<'a>(&self) -> &'a mut [T] {
        debug_assert!(self.dir.writes());
        // SAFETY: as in `slice`; outputs are always required, so non-null.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.cast_mut(), self.used) }
    }

    /// Writes a struct output, if given.
    ///
    /// # Safety
    /// As [`Buf::slice_mut`].
    pub(super) unsafe fn write(&self, value: T) {
        if self.is_given() {
            // SAFETY: as the function's contract says.
            unsafe { self.ptr.cast_mut().write(value) };
        }
    }

    /// The pointer, for an output that other calls may share outside the
    /// elements this one writes, so that no slice may span it.
    pub(super) fn as_mut_ptr(&self) -> *mut T {
        self.ptr.cast_mut()
    }
}

/// A [`Buf`] without its element type: what the checks need.
#[derive(Clone, Copy, Debug)]
pub(super) struct Arg {
    addr: usize,
    align: usize,
    size: usize,
    len: usize,
    used: usize,
    dir: Dir,
    required: bool,
}

impl Arg {
    fn is_given(&self) -> bool {
        self.addr != 0
    }

    /// The extent's bytes, if they fit a Rust slice (`isize::MAX`).
    fn bytes(&self) -> Option<usize> {
        self.used
            .checked_mul(self.size)
            .filter(|&b| b <= isize::MAX as usize)
    }

    /// The bytes of the extent within the declared length: what must not
    /// overlap. Only called once `bytes` passed.
    fn span(&self) -> Range<usize> {
        if !self.is_given() {
            return 0..0;
        }
        let bytes = self.used.min(self.len) * self.size;
        self.addr..self.addr.saturating_add(bytes)
    }
}

/// Declares one kind of call from its fields, listed once: the struct,
/// `new` from the C arguments in the order of the fields, and [`Buffers`].
/// Each field is one of
/// - `name: input<T>[len],` an array the call reads: C arguments
///   `name: *const T, len: usize`, kept as [`Buf::input`];
/// - `name: output<T>[len],` an array the call writes: `name: *mut T,
///   len: usize`, kept as [`Buf::output`];
/// - `name: in_out<T>[len],` an array the call reads and writes: `name:
///   *mut T, len: usize`, kept as [`Buf::in_out`];
/// - `name: value_in<T>,` / `name: value_out<T>,` one struct the call reads
///   or writes: `name: *const T` / `*mut T`, kept as [`Buf::value_in`] /
///   [`Buf::value_out`]; followed by `.optional()`, NULL means "not given";
/// - `name: T,` a plain C argument, kept as it came;
/// - `later name: Buf<T>,` a buffer that a struct of the call points to,
///   none until [`Call::open`] or [`Call::choose`] reads it;
/// - `later name: T,` state kept between the steps, `T::default()` first.
///
/// Every `Buf` field is one of the call's buffers, in field order.
macro_rules! call_kind {
    ($(#[$meta:meta])* struct $name:ident $(<$g:ident>)? { $($fields:tt)* }) => {
        call_kind!(@field [$(#[$meta])* $name $(<$g>)?] [] [] [] [] $($fields)*);
    };
    // Each `@field` rule takes the first field off the list and adds it to
    // the struct's fields [f], `new`'s parameters [p] and initializers [i],
    // and the buffers [b].
    (@field $head:tt [$($f:tt)*] [$($p:tt)*] [$($i:tt)*] [$($b:tt)*]
        $(#[$m:meta])* $x:ident: input<$t:ty>[$len:ident], $($rest:tt)*) => {
        call_kind!(@field $head
            [$($f)* $(#[$m])* $x: $crate::ffi::call::Buf<$t>,]
            [$($p)* $x: *const $t, $len: usize,]
            [$($i)* $x: $crate::ffi::call::Buf::input($x, $len),]
            [$($b)* $x] $($rest)*);
    };
    (@field $head:tt [$($f:tt)*] [$($p:tt)*] [$($i:tt)*] [$($b:tt)*]
        $(#[$m:meta])* $x:ident: output<$t:ty>[$len:ident], $($rest:tt)*) => {
        call_kind!(@field $head
            [$($f)* $(#[$m])* $x: $crate::ffi::call::Buf<$t>,]
            [$($p)* $x: *mut $t, $len: usize,]
            [$($i)* $x: $crate::ffi::call::Buf::output($x, $len),]
            [$($b)* $x] $($rest)*);
    };
    (@field $head:tt [$($f:tt)*] [$($p:tt)*] [$($i:tt)*] [$($b:tt)*]
        $(#[$m:meta])* $x:ident: in_out<$t:ty>[$len:ident], $($rest:tt)*) => {
        call_kind!(@field $head
            [$($f)* $(#[$m])* $x: $crate::ffi::call::Buf<$t>,]
            [$($p)* $x: *mut $t, $len: usize,]
            [$($i)* $x: $crate::ffi::call::Buf::in_out($x, $len),]
            [$($b)* $x] $($rest)*);
    };
    (@field $head:tt [$($f:tt)*] [$($p:tt)*] [$($i:tt)*] [$($b:tt)*]
        $(#[$m:meta])* $x:ident: value_in<$t:ty> $(.$opt:ident())?, $($rest:tt)*) => {
        call_kind!(@field $head
            [$($f)* $(#[$m])* $x: $crate::ffi::call::Buf<$t>,]
            [$($p)* $x: *const $t,]
            [$($i)* $x: $crate::ffi::call::Buf::value_in($x)$(.$opt())?,]
            [$($b)* $x] $($rest)*);
    };
    (@field $head:tt [$($f:tt)*] [$($p:tt)*] [$($i:tt)*] [$($b:tt)*]
        $(#[$m:meta])* $x:ident: value_out<$t:ty> $(.$opt:ident())?, $($rest:tt)*) => {
        call_kind!(@field $head
            [$($f)* $(#[$m])* $x: $crate::ffi::call::Buf<$t>,]
            [$($p)* $x: *mut $t,]
            [$($i)* $x: $crate::ffi::call::Buf::value_out($x)$(.$opt())?,]
            [$($b)* $x] $($rest)*);
    };
    (@field $head:tt [$($f:tt)*] [$($p:tt)*] [$($i:tt)*] [$($b:tt)*]
        $(#[$m:meta])* later $x:ident: Buf<$t:ty>, $($rest:tt)*) => {
        call_kind!(@field $head
            [$($f)* $(#[$m])* $x: $crate::ffi::call::Buf<$t>,]
            [$($p)*]
            [$($i)* $x: $crate::ffi::call::Buf::none(),]
            [$($b)* $x] $($rest)*);
    };
    (@field $head:tt [$($f:tt)*] [$($p:tt)*] [$($i:tt)*] [$($b:tt)*]
        $(#[$m:meta])* later $x:ident: $t:ty, $($rest:tt)*) => {
        call_kind!(@field $head
            [$($f)* $(#[$m])* $x: $t,]
            [$($p)*]
            [$($i)* $x: Default::default(),]
            [$($b)*] $($rest)*);
    };
    (@field $head:tt [$($f:tt)*] [$($p:tt)*] [$($i:tt)*] [$($b:tt)*]
        $(#[$m:meta])* $x:ident: $t:ty, $($rest:tt)*) => {
        call_kind!(@field $head
            [$($f)* $(#[$m])* $x: $t,]
            [$($p)* $x: $t,]
            [$($i)* $x,]
            [$($b)*] $($rest)*);
    };
    // No field left: the items.
    (@field [$(#[$meta:meta])* $name:ident $(<$g:ident>)?]
        [$($f:tt)*] [$($p:tt)*] [$($i:tt)*] [$($b:ident)*]) => {
        $(#[$meta])*
        struct $name $(<$g>)? { $($f)* }

        impl $(<$g>)? $name $(<$g>)? {
            /// The call, from its C arguments as they came.
            #[allow(clippy::too_many_arguments)] // the C signature's
            fn new($($p)*) -> Self {
                $name { $($i)* }
            }
        }

        impl $(<$g>)? $crate::ffi::call::Buffers for $name $(<$g>)? {
            fn args(&self) -> impl AsRef<[$crate::ffi::call::Arg]> {
                [$(self.$b.arg()),*]
            }
        }
    };
}

/// The buffers of a call, as [`call_kind!`] declares them.
pub(super) trait Buffers {
    /// Every buffer of the call, those given as arguments in their order
    /// first. Not-given and not-yet-known buffers count as none.
    fn args(&self) -> impl AsRef<[Arg]>;
}

/// One kind of call: its buffers, options and shape. [`checked`] calls
/// these in its fixed order.
pub(super) trait Call: Buffers {
    /// What the option arguments chose.
    type Choices;
    /// What the shape step computed, for `run`.
    type Shape;

    /// Reads the structs that hold further buffers (a `cq4_matrix`).
    ///
    /// # Safety
    /// Their pointers passed [`check_pointers`]; the caller of the
    /// `extern "C"` function promised them readable.
    unsafe fn open(&mut self) {}

    /// Reads and checks the option arguments.
    ///
    /// # Safety
    /// As [`Call::open`], for the option structs.
    unsafe fn choose(&mut self) -> Result<Self::Choices, cq4_status>;

    /// Checks the shape, computes every size with overflow checks and
    /// [`Buf::touch`]es each buffer with its extent.
    fn shape(&mut self, choices: &Self::Choices) -> Result<Self::Shape, cq4_status>;

    /// Runs the safe core over the touched prefixes.
    ///
    /// # Safety
    /// Only from [`checked`], once every check passed.
    unsafe fn run(self, choices: Self::Choices, shape: Self::Shape) -> Result<(), cq4_status>;
}

/// Runs `call` through the checks, in the header's order: NULL, alignment
/// (the call's own pointers, then those of the structs they point to),
/// options, shape and sizes, overlap, input lengths, output lengths; then
/// the call itself, which may still refuse the values it reads.
///
/// # Safety
/// The caller of the `extern "C"` function kept its `# Safety` promises:
/// each pointer NULL or valid for its declared length.
pub(super) unsafe fn checked<C: Call>(mut call: C) -> cq4_status {
    guard(move || {
        check_pointers(call.args().as_ref())?;
        // SAFETY: the pointers passed; the caller's promise covers the rest.
        unsafe { call.open() };
        check_pointers(call.args().as_ref())?;
        // SAFETY: as for `open`.
        let choices = unsafe { call.choose() }?;
        let shape = call.shape(&choices)?;
        check_extents(call.args().as_ref())?;
        // SAFETY: every check passed.
        unsafe { call.run(choices, shape) }
    })
}

/// NULL pointers first, then misaligned ones.
fn check_pointers(args: &[Arg]) -> Result<(), cq4_status> {
    if args.iter().any(|a| a.required && !a.is_given()) {
        return Err(CQ4_ERR_NULL_POINTER);
    }
    if args.iter().any(|a| a.addr % a.align != 0) {
        return Err(CQ4_ERR_MISALIGNED_POINTER);
    }
    Ok(())
}

/// Byte counts, overlap, input lengths, output lengths (those the call
/// also reads among them), in that order.
fn check_extents(args: &[Arg]) -> Result<(), cq4_status> {
    let given = || args.iter().filter(|a| a.is_given());
    if given().any(|a| a.bytes().is_none()) {
        return Err(CQ4_ERR_SIZE_OVERFLOW);
    }
    check_disjoint(args)?;
    let short = |writes| given().any(|a| a.dir.writes() == writes && a.used > a.len);
    if short(false) {
        return Err(CQ4_ERR_INPUT_TOO_SHORT);
    }
    if short(true) {
        return Err(CQ4_ERR_OUTPUT_TOO_SMALL);
    }
    Ok(())
}

/// Refuses a call where an output's span (or an in/out buffer's) shares a
/// byte with any other buffer's.
fn check_disjoint(args: &[Arg]) -> Result<(), cq4_status> {
    let overlap = |a: &Range<usize>, b: &Range<usize>| {
        !a.is_empty() && !b.is_empty() && a.start < b.end && b.start < a.end
    };
    for (i, out) in args.iter().enumerate().filter(|(_, a)| a.dir.writes()) {
        let others = args.iter().enumerate().filter(|&(j, _)| j != i);
        if others
            .into_iter()
            .any(|(_, o)| overlap(&out.span(), &o.span()))
        {
            return Err(CQ4_ERR_OVERLAPPING_BUFFERS);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(addr: usize, used: usize, len: usize, dir: Dir) -> Arg {
        Arg {
            addr,
            align: 4,
            size: 4,
            len,
            used,
            dir,
            required: true,
        }
    }

    #[test]
    fn spans_stop_at_the_extent_and_the_declared_length() {
        let out = arg(0x1000, 2, 100, Dir::Out);
        let input = arg(0x1008, 4, 4, Dir::In);
        assert_eq!(check_disjoint(&[out, input]), Ok(()));
        let long_out = arg(0x1000, 3, 100, Dir::Out);
        assert_eq!(
            check_disjoint(&[long_out, input]),
            Err(CQ4_ERR_OVERLAPPING_BUFFERS)
        );
        // A short input overlaps only within what it declares.
        let short_in = arg(0x1008, 4, 0, Dir::In);
        assert_eq!(check_disjoint(&[long_out, short_in]), Ok(()));
        // Inputs may share bytes with each other.
        assert_eq!(check_disjoint(&[input, input]), Ok(()));
    }

    #[test]
    fn extents_are_checked_in_order() {
        let huge = arg(0x1000, usize::MAX / 4 + 1, 8, Dir::In);
        let out = arg(0x1000, 1, 0, Dir::Out);
        assert_eq!(check_extents(&[huge, out]), Err(CQ4_ERR_SIZE_OVERFLOW));
        let short_in = arg(0x2000, 9, 8, Dir::In);
        assert_eq!(
            check_extents(&[short_in, arg(0x2000, 1, 1, Dir::Out)]),
            Err(CQ4_ERR_OVERLAPPING_BUFFERS)
        );
        assert_eq!(
            check_extents(&[short_in, out]),
            Err(CQ4_ERR_INPUT_TOO_SHORT)
        );
        assert_eq!(
            check_extents(&[arg(0x2000, 8, 8, Dir::In), out]),
            Err(CQ4_ERR_OUTPUT_TOO_SMALL)
        );
    }

    #[test]
    fn an_in_out_buffer_is_an_output_that_must_not_overlap_the_inputs() {
        let h = arg(0x1000, 4, 4, Dir::InOut);
        let x = arg(0x1008, 2, 2, Dir::In);
        assert_eq!(check_extents(&[x, h]), Err(CQ4_ERR_OVERLAPPING_BUFFERS));
        let x = arg(0x1010, 2, 2, Dir::In);
        assert_eq!(check_extents(&[x, h]), Ok(()));
        // Short: an output's status, though the call reads it.
        let short_h = arg(0x1000, 4, 3, Dir::InOut);
        assert_eq!(check_extents(&[x, short_h]), Err(CQ4_ERR_OUTPUT_TOO_SMALL));
        let short_x = arg(0x1010, 2, 1, Dir::In);
        assert_eq!(
            check_extents(&[short_x, short_h]),
            Err(CQ4_ERR_INPUT_TOO_SHORT)
        );
    }

    #[test]
    fn a_versioned_struct_spans_the_bytes_it_declares() {
        let room = [0u64; 8];
        let mut s = Buf::value_in(room.as_ptr());
        let mut out = Buf::output(room.as_ptr().cast_mut().cast::<u8>(), 64);
        out.touch(64);
        assert_eq!(
            check_extents(&[s.arg(), out.arg()]),
            Err(CQ4_ERR_OVERLAPPING_BUFFERS)
        );
        // SAFETY: `room` holds 64 readable bytes.
        let head = unsafe { s.read_as::<[u32; 3]>() };
        assert_eq!(head, Some([0; 3]));
        let after = room[2..].as_ptr().cast_mut().cast::<u8>();
        let mut out = Buf::output(after, 48);
        out.touch(48);
        assert_eq!(check_extents(&[s.arg(), out.arg()]), Ok(()));
        s.declare_bytes(20);
        assert_eq!(
            check_extents(&[s.arg(), out.arg()]),
            Err(CQ4_ERR_OVERLAPPING_BUFFERS)
        );
        s.declare_bytes(16);
        assert_eq!(check_extents(&[s.arg(), out.arg()]), Ok(()));
    }

    #[test]
    fn null_comes_before_misalignment_and_optional_null_is_fine() {
        let misaligned = arg(0x1001, 1, 1, Dir::In);
        let null = arg(0, 1, 1, Dir::Out);
        assert_eq!(
            check_pointers(&[misaligned, null]),
            Err(CQ4_ERR_NULL_POINTER)
        );
        assert_eq!(
            check_pointers(&[misaligned]),
            Err(CQ4_ERR_MISALIGNED_POINTER)
        );
        let absent = Buf::<f32>::none();
        assert_eq!(absent.check_pointer(), Ok(()));
        let out = arg(0x4000, 0, 0, Dir::Out);
        assert_eq!(check_extents(&[absent.arg(), out]), Ok(()));
    }
}
