//! Generates the C header with cbindgen and compiles the C test harness
//! (`c_tests/`) against it into a static library that only the tests link.

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    for path in ["src", "cbindgen.toml", "c_tests"] {
        println!("cargo:rerun-if-changed={path}");
    }
    println!("cargo:rerun-if-env-changed=CI");

    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable");
    config.after_includes = Some(version_macros());
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write_to_file(out_dir.join("cortex_q4.h"));

    // The harness is compiled against the freshly generated header; the
    // committed copy in include/ is checked against it by tests/header.rs.
    // Its warnings are errors in CI, and only warnings for anyone else
    // building the library with another compiler.
    cc::Build::new()
        .file(crate_dir.join("c_tests/harness.c"))
        .include(&out_dir)
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(env::var_os("CI").is_some())
        .cargo_metadata(false)
        .compile("cq4_c_harness");
    println!("cargo:rustc-link-search=native={}", out_dir.display());
}

/// The `CQ4_VERSION_*` macros, from the package version (the one source).
fn version_macros() -> String {
    let var = |name: &str| env::var(name).unwrap();
    format!(
        "\n/** Version of the library this header belongs to (semver). */\n\
         #define CQ4_VERSION_MAJOR {}\n#define CQ4_VERSION_MINOR {}\n\
         #define CQ4_VERSION_PATCH {}\n#define CQ4_VERSION_STRING \"{}\"",
        var("CARGO_PKG_VERSION_MAJOR"),
        var("CARGO_PKG_VERSION_MINOR"),
        var("CARGO_PKG_VERSION_PATCH"),
        var("CARGO_PKG_VERSION"),
    )
}
