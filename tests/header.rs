//! The committed header must be exactly what cbindgen generates now.

use std::path::Path;

const GENERATED: &str = include_str!(concat!(env!("OUT_DIR"), "/cortex_q4.h"));

#[test]
fn committed_header_is_fresh() {
    let committed_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/cortex_q4.h");
    if std::env::var_os("CQ4_BLESS_HEADER").is_some() {
        std::fs::write(&committed_path, GENERATED).expect("include/cortex_q4.h is writable");
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    assert!(
        committed == GENERATED,
        "include/cortex_q4.h is stale: the C ABI changed. Refresh it with\n    \
         CQ4_BLESS_HEADER=1 cargo test --test header\nand commit the result."
    );
}

#[test]
fn every_function_and_macro_is_documented() {
    let lines: Vec<&str> = GENERATED.lines().collect();
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

#[test]
fn version_macros_match_the_package() {
    for (name, value) in [
        ("MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("PATCH", env!("CARGO_PKG_VERSION_PATCH")),
        ("STRING", concat!("\"", env!("CARGO_PKG_VERSION"), "\"")),
    ] {
        let line = format!("#define CQ4_VERSION_{name} {value}");
        assert!(GENERATED.lines().any(|l| l == line), "missing: {line}");
    }
    assert!(GENERATED.contains(&format!(
        "#define CQ4_MAX_GROUP_SIZE {}",
        cortex_q4::MAX_GROUP_SIZE
    )));
}
