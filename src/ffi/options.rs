//! `cq4_options`: the C face of [`Options`], versioned by its size.

use std::ffi::{c_char, c_int};
use std::mem::size_of;

use super::call::Buf;
use super::cq4_status::{self, *};
use crate::kernels::Kernel;
use crate::options::Options;

/// Kernel ids for `cq4_options.kernel`.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cq4_kernel {
    /// The fastest kernel this CPU runs, or the one the `CQ4_KERNEL`
    /// environment variable (scalar, avx2, avxvnni, avx512, neon, neondotprod,
    /// neoni8mm) names; decided once
    /// per process.
    CQ4_KERNEL_AUTO = 0,
    /// The scalar reference, on every CPU.
    CQ4_KERNEL_SCALAR = 1,
    /// x86-64 AVX2 + FMA.
    CQ4_KERNEL_AVX2 = 2,
    /// x86-64 AVX-512 F, BW and VL.
    CQ4_KERNEL_AVX512 = 3,
    /// aarch64 NEON.
    CQ4_KERNEL_NEON = 4,
    /// x86-64 AVX2 + FMA with AVX-VNNI.
    CQ4_KERNEL_AVX_VNNI = 5,
    /// aarch64 NEON with the dot-product extension (`sdot`).
    CQ4_KERNEL_NEON_DOTPROD = 6,
    /// aarch64 NEON with the dot-product and int8 matrix-multiply
    /// extensions (`sdot`, `smmla`).
    CQ4_KERNEL_NEON_I8MM = 7,
}

/// How a call runs; never what it computes (every choice gives the same
/// bytes). Start from `cq4_options_default()` and change fields.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct cq4_options {
    /// `sizeof(cq4_options)` as the caller compiled it, so that the struct
    /// can grow: this version accepts its own size only (any other is
    /// `CQ4_ERR_BAD_OPTIONS`); later versions will also accept this one.
    pub struct_size: u32,
    /// A `cq4_kernel` id.
    pub kernel: u32,
    /// Threads of the library's persistent pool: 0 = all of them, 1 = the
    /// calling thread only (the default).
    pub threads: u32,
}

/// The C id of each kernel: the one table between the two (AUTO, id 0,
/// names no kernel).
fn kernel_id(kernel: Kernel) -> cq4_kernel {
    match kernel {
        Kernel::Scalar => cq4_kernel::CQ4_KERNEL_SCALAR,
        Kernel::Avx2 => cq4_kernel::CQ4_KERNEL_AVX2,
        Kernel::Avx512 => cq4_kernel::CQ4_KERNEL_AVX512,
        Kernel::Neon => cq4_kernel::CQ4_KERNEL_NEON,
        Kernel::AvxVnni => cq4_kernel::CQ4_KERNEL_AVX_VNNI,
        Kernel::NeonDotprod => cq4_kernel::CQ4_KERNEL_NEON_DOTPROD,
        Kernel::NeonI8mm => cq4_kernel::CQ4_KERNEL_NEON_I8MM,
    }
}

/// The kernel with C id `id` (`None` for AUTO), or `Err` for an unknown id.
fn kernel_from_id(id: u32) -> Result<Option<Kernel>, cq4_status> {
    if id == cq4_kernel::CQ4_KERNEL_AUTO as u32 {
        return Ok(None);
    }
    let kernel = Kernel::ALL.into_iter().find(|&k| kernel_id(k) as u32 == id);
    kernel.map(Some).ok_or(CQ4_ERR_BAD_OPTIONS)
}

/// Reads the caller's options (not given: the defaults) and checks that
/// their kernel runs here.
///
/// # Safety
/// As [`Buf::read`].
pub(super) unsafe fn read_options(options: &Buf<cq4_options>) -> Result<Options, cq4_status> {
    // SAFETY: the caller's promise.
    let Some(c) = (unsafe { options.read() }) else {
        return Ok(Options::default());
    };
    if c.struct_size as usize != size_of::<cq4_options>() {
        return Err(CQ4_ERR_BAD_OPTIONS);
    }
    let mut opts = Options::default().with_threads(c.threads as usize);
    opts.kernel = kernel_from_id(c.kernel)?;
    opts.kernel()?;
    Ok(opts)
}

/// Returns the default options: `struct_size` set, `CQ4_KERNEL_AUTO`, one
/// thread (the calling one).
#[no_mangle]
pub extern "C" fn cq4_options_default() -> cq4_options {
    cq4_options {
        struct_size: size_of::<cq4_options>() as u32,
        kernel: cq4_kernel::CQ4_KERNEL_AUTO as u32,
        threads: 1,
    }
}

/// Returns 1 when kernel id `kernel` runs on this CPU (`CQ4_KERNEL_AUTO`
/// always does), else 0 (unknown ids included).
#[no_mangle]
pub extern "C" fn cq4_kernel_supported(kernel: u32) -> c_int {
    match kernel_from_id(kernel) {
        Ok(None) => 1,
        Ok(Some(k)) => c_int::from(k.is_supported()),
        Err(_) => 0,
    }
}

/// Returns the id of the kernel `CQ4_KERNEL_AUTO` runs in this process.
#[no_mangle]
pub extern "C" fn cq4_kernel_auto() -> u32 {
    kernel_id(Kernel::auto()) as u32
}

/// Returns a static name for kernel id `kernel` ("auto", "scalar", "avx2",
/// "avx512", "neon", "avxvnni", "neondotprod", "neoni8mm"; "unknown"
/// otherwise). Never NULL; do not free it.
#[no_mangle]
pub extern "C" fn cq4_kernel_name(kernel: u32) -> *const c_char {
    let name = match kernel_from_id(kernel) {
        Ok(None) => c"auto",
        Ok(Some(k)) => k.c_name(),
        Err(_) => c"unknown",
    };
    name.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::tests::{header_enum, header_value};
    use std::ffi::CStr;

    #[test]
    fn kernel_ids_are_the_headers() {
        let ids = header_enum("cq4_kernel");
        assert_eq!(ids.len(), Kernel::ALL.len() + 1, "{ids:?}");
        for (name, id) in &ids {
            let id = u32::try_from(*id).unwrap();
            // CQ4_KERNEL_AVX_VNNI names "avxvnni".
            let want = name.strip_prefix("CQ4_KERNEL_").unwrap();
            let want = want.to_lowercase().replace('_', "");
            // SAFETY: cq4_kernel_name returns a static NUL-terminated string.
            let got = unsafe { CStr::from_ptr(cq4_kernel_name(id)) };
            assert_eq!(got.to_str().unwrap(), want, "{name} = {id}");
            let supported = match Kernel::ALL.into_iter().find(|k| k.name() == want) {
                Some(kernel) => kernel.is_supported(),
                None => {
                    assert_eq!(want, "auto", "{name} names no kernel");
                    true
                }
            };
            assert_eq!(cq4_kernel_supported(id), c_int::from(supported), "{name}");
        }
        let unknown = ids.iter().map(|(_, id)| *id as u32).max().unwrap() + 1;
        // SAFETY: as above.
        let name = unsafe { CStr::from_ptr(cq4_kernel_name(unknown)) };
        assert_eq!(name, c"unknown");
        assert_eq!(cq4_kernel_supported(unknown), 0);
        // SAFETY: as above.
        let auto = unsafe { CStr::from_ptr(cq4_kernel_name(cq4_kernel_auto())) };
        assert_eq!(auto.to_str().unwrap(), Kernel::auto().name());
        assert_eq!(
            cq4_options_default().kernel as i64,
            header_value("CQ4_KERNEL_AUTO")
        );
    }

    #[test]
    fn ids_round_trip_and_names_match_rust() {
        for kernel in Kernel::ALL {
            let id = kernel_id(kernel) as u32;
            assert_eq!(kernel_from_id(id), Ok(Some(kernel)));
            // SAFETY: cq4_kernel_name returns a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(cq4_kernel_name(id)) };
            assert_eq!(name.to_str().unwrap(), kernel.name());
            assert_eq!(cq4_kernel_supported(id) == 1, kernel.is_supported());
        }
        // SAFETY: as above.
        let name = |id| unsafe { CStr::from_ptr(cq4_kernel_name(id)) };
        assert_eq!(name(cq4_kernel::CQ4_KERNEL_AUTO as u32), c"auto");
        let unknown = cq4_kernel::CQ4_KERNEL_NEON_I8MM as u32 + 1;
        assert_eq!(name(unknown), c"unknown");
        assert_eq!(kernel_from_id(unknown), Err(CQ4_ERR_BAD_OPTIONS));
        assert_eq!(kernel_from_id(cq4_kernel_auto()), Ok(Some(Kernel::auto())));
    }

    fn read_options(c: *const cq4_options) -> Result<Options, cq4_status> {
        // SAFETY: `c` is NULL or a live `cq4_options`.
        unsafe { super::read_options(&Buf::value_in(c).optional()) }
    }

    #[test]
    fn options_are_checked() {
        assert_eq!(read_options(std::ptr::null()), Ok(Options::default()));
        let mut c = cq4_options_default();
        assert_eq!(read_options(&c), Ok(Options::default()));
        c.threads = 0;
        c.kernel = cq4_kernel::CQ4_KERNEL_SCALAR as u32;
        assert_eq!(
            read_options(&c),
            Ok(Options::default()
                .with_threads(0)
                .with_kernel(Kernel::Scalar))
        );
        c.kernel = 99;
        assert_eq!(read_options(&c), Err(CQ4_ERR_BAD_OPTIONS));
        c = cq4_options_default();
        c.struct_size += 4;
        assert_eq!(read_options(&c), Err(CQ4_ERR_BAD_OPTIONS));
    }
}
