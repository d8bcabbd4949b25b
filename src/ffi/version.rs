//! Version of the library and of its ABI. The `CQ4_VERSION_*` macros of
//! the header are written by build.rs from the package version.

use std::ffi::{c_char, CStr};

/// Bumped on every change that breaks binary compatibility (2: 0.3.0,
/// `cq4_encoder_options` grew, and `cq4_encoder_options_default` returns it
/// by value).
pub const CQ4_ABI_VERSION: u32 = 2;

const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(version) => version,
        Err(_) => panic!("the package version contains a NUL byte"),
    };

/// Returns the version string of the linked library, such as "0.2.0".
/// Never NULL; static; do not free it.
#[no_mangle]
pub extern "C" fn cq4_version() -> *const c_char {
    VERSION.as_ptr()
}

/// Returns the ABI version of the linked library; compare it with
/// `CQ4_ABI_VERSION` from the header you compiled against.
#[no_mangle]
pub extern "C" fn cq4_abi_version() -> u32 {
    CQ4_ABI_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::tests::header_define;

    #[test]
    fn abi_version_is_the_headers() {
        let header: u32 = header_define("CQ4_ABI_VERSION").parse().unwrap();
        assert_eq!(cq4_abi_version(), header);
    }
}
