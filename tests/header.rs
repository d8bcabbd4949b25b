//! The committed header must be exactly what cbindgen generates now.

use std::path::Path;
use std::sync::OnceLock;

/// The header cbindgen generates from the sources and cbindgen.toml, with
/// the `CQ4_VERSION_*` macros from the package version (the one source).
fn generated() -> &'static str {
    static GENERATED: OnceLock<String> = OnceLock::new();
    GENERATED.get_or_init(|| {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
            .expect("cbindgen.toml is readable");
        config.after_includes = Some(version_macros());
        let mut header = Vec::new();
        cbindgen::Builder::new()
            .with_crate(crate_dir)
            .with_config(config)
            .generate()
            .expect("cbindgen generates the header")
            .write(&mut header);
        String::from_utf8(header).expect("the header is UTF-8")
    })
}

fn version_macros() -> String {
    format!(
        "\n/** Version of the library this header belongs to (semver). */\n\
         #define CQ4_VERSION_MAJOR {}\n#define CQ4_VERSION_MINOR {}\n\
         #define CQ4_VERSION_PATCH {}\n#define CQ4_VERSION_STRING \"{}\"",
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
        env!("CARGO_PKG_VERSION"),
    )
}

#[test]
fn committed_header_is_fresh() {
    let committed_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/cortex_q4.h");
    if std::env::var_os("CQ4_BLESS_HEADER").is_some() {
        std::fs::write(&committed_path, generated()).expect("include/cortex_q4.h is writable");
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    assert!(
        committed == generated(),
        "include/cortex_q4.h is stale: the C ABI changed. Refresh it with\n    \
         CQ4_BLESS_HEADER=1 cargo test --test header\nand commit the result."
    );
}

#[test]
fn every_function_and_macro_is_documented() {
    let lines: Vec<&str> = generated().lines().collect();
    let mut seen = 0;
    for (i, line) in lines.iter().enumerate() {
        let at_top_level = !line.starts_with([' ', '*', '/', '#']);
        let is_fn = at_top_level && line.contains("cq4_") && line.contains('(');
        let is_macro = line.starts_with("#define CQ4_");
        if !(is_fn || is_macro) {
            continue;
        }
        seen += 1;
        // A doc comment ends on the line before, or the macro is one of a
        // documented block of version macros.
        let prev = lines[..i]
            .iter()
            .rev()
            .find(|l| !l.starts_with("#define CQ4_VERSION"));
        assert!(
            prev.is_some_and(|p| p.trim_end().ends_with("*/")),
            "undocumented in the header: {line}"
        );
    }
    assert!(seen >= 15, "found only {seen} declarations");
}

/// The string `key = "..."` of the `[table]` of Cargo.toml, read from the
/// file rather than from the environment the generator reads.
fn cargo_toml_string(table: &str, key: &str) -> String {
    let toml = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .expect("Cargo.toml is readable");
    let toml = format!("\n{toml}");
    let header = format!("\n[{table}]\n");
    let body = toml
        .split(&header)
        .nth(1)
        .unwrap_or_else(|| panic!("Cargo.toml has [{table}]"));
    let body = body.split("\n[").next().unwrap();
    let prefix = format!("{key} = \"");
    body.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("[{table}] has {key} = \"...\""))
        .to_string()
}

/// The `version` of `[package]` in Cargo.toml.
fn cargo_toml_version() -> String {
    cargo_toml_string("package", "version")
}

/// The value of `#define NAME value` in the committed header.
fn committed_define(name: &str) -> String {
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/cortex_q4.h"))
            .expect("include/cortex_q4.h is readable");
    let prefix = format!("#define {name} ");
    let found = committed.lines().find_map(|l| l.strip_prefix(&prefix));
    found
        .unwrap_or_else(|| panic!("no {prefix}"))
        .trim()
        .to_string()
}

#[test]
fn committed_version_macros_and_cq4_version_match_cargo_toml() {
    let define = |name: &str| committed_define(&format!("CQ4_VERSION_{name}"));
    let version = cargo_toml_version();
    assert_eq!(define("STRING"), format!("\"{version}\""));
    let core = version.split(['-', '+']).next().unwrap();
    let numbers: Vec<&str> = core.split('.').collect();
    assert_eq!(numbers.len(), 3, "{version} is not semver");
    for (name, number) in ["MAJOR", "MINOR", "PATCH"].into_iter().zip(numbers) {
        assert_eq!(
            define(name),
            number,
            "CQ4_VERSION_{name} against Cargo.toml's {version}"
        );
    }
    // SAFETY: cq4_version returns a static NUL-terminated string.
    let linked = unsafe { std::ffi::CStr::from_ptr(cortex_q4::ffi::cq4_version()) };
    assert_eq!(linked.to_str().unwrap(), version, "cq4_version()");
}

#[test]
fn committed_max_group_size_is_what_the_library_accepts() {
    let max: usize = committed_define("CQ4_MAX_GROUP_SIZE").parse().unwrap();
    let layout = |g| {
        let mut out = std::mem::MaybeUninit::uninit();
        // SAFETY: `out` is valid for one write.
        unsafe { cortex_q4::ffi::cq4_layout_get(1, 1, g, out.as_mut_ptr()) }
    };
    assert_eq!(layout(max), cortex_q4::ffi::cq4_status::CQ4_OK);
    assert_eq!(
        layout(max + 1),
        cortex_q4::ffi::cq4_status::CQ4_ERR_BAD_GROUP_SIZE
    );
}

/// `cargo cinstall` names the shared library after
/// `[package.metadata.capi.library] version`: its SONAME is
/// libcortex_q4.so.<major>, which must be the ABI version, and the file
/// libcortex_q4.so.<major>.<minor>.<patch>, the minor and patch of the
/// package.
#[test]
fn installed_library_version_is_the_abi_version_then_the_packages() {
    let abi = committed_define("CQ4_ABI_VERSION");
    assert_eq!(abi, cortex_q4::ffi::cq4_abi_version().to_string());
    let package = cargo_toml_version();
    let core = package.split(['-', '+']).next().unwrap();
    let (_major, minor_patch) = core.split_once('.').expect("a semver version");
    let want = format!("{abi}.{minor_patch}");
    assert_eq!(
        cargo_toml_string("package.metadata.capi.library", "version"),
        want,
        "the installed library's version against CQ4_ABI_VERSION {abi} and package {package}"
    );
}
