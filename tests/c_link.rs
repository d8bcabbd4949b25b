//! C programs compiled by the system compiler (`$CC`, default `cc`, with
//! `$CFLAGS`) against the committed header and linked against the built
//! libraries: the README's examples, and one program that takes the
//! address of every function the header declares.

use std::path::{Path, PathBuf};
use std::process::Command;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where this `cargo test` run put libcortex_q4.so and .a: beside the test
/// binary in target/<profile>/deps (a plain `cargo build` copies them one
/// level up, where they may be stale).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().to_path_buf()
}

fn work_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c_link");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles `source` with `link_args`, runs it and returns its stdout.
fn compile_and_run(name: &str, source: &str, link_args: &[String]) -> String {
    let dir = work_dir();
    let c_file = dir.join(format!("{name}.c"));
    let exe = dir.join(name);
    std::fs::write(&c_file, source).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    // CFLAGS as cc passes them to the C harness: a sanitized library
    // needs programs built with the same sanitizers.
    let cflags = std::env::var("CFLAGS").unwrap_or_default();
    let out = Command::new(&cc)
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror"])
        .args(cflags.split_whitespace())
        .arg("-I")
        .arg(manifest_dir().join("include"))
        .arg(&c_file)
        .arg("-o")
        .arg(&exe)
        .args(link_args)
        .output()
        .expect("a C compiler is installed");
    assert!(
        out.status.success(),
        "{name}.c failed to build:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // cargo's LD_LIBRARY_PATH lists target/<profile>, where an older build
    // may have left a stale library that would win over the rpath.
    let run = Command::new(&exe)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{name} failed: {}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    String::from_utf8(run.stdout).unwrap()
}

fn shared_link_args() -> Vec<String> {
    let lib = lib_dir();
    assert!(
        lib.join("libcortex_q4.so").exists(),
        "no libcortex_q4.so in {}",
        lib.display()
    );
    vec![
        format!("-L{}", lib.display()),
        "-lcortex_q4".into(),
        format!("-Wl,-rpath,{}", lib.display()),
    ]
}

fn readme_c_example() -> String {
    let readme = std::fs::read_to_string(manifest_dir().join("README.md")).unwrap();
    let start = readme.find("```c\n").expect("README has a C example") + 5;
    let len = readme[start..].find("```").unwrap();
    readme[start..start + len].to_string()
}

#[test]
fn readme_example_runs_against_the_shared_library() {
    let out = compile_and_run("readme_shared", &readme_c_example(), &shared_link_args());
    let want = format!(
        "cortex_q4 {}: 4 bytes + 2 scales for 8 weights\n",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(out, want);
}

/// The README's C program that calibrates a Hessian and packs with it.
fn readme_calibration_example() -> String {
    let readme = std::fs::read_to_string(manifest_dir().join("README.md")).unwrap();
    readme
        .split("```c\n")
        .skip(1)
        .map(|block| &block[..block.find("```").unwrap()])
        .find(|block| block.contains("int main") && block.contains("cq4_hessian_accumulate_f32("))
        .expect("README has a C program that calibrates a Hessian")
        .to_string()
}

#[test]
fn readme_calibration_example_runs() {
    let out = compile_and_run(
        "readme_calibration",
        &readme_calibration_example(),
        &shared_link_args(),
    );
    assert_eq!(out, "calibrated on 64 rows: 32 bytes + 8 scales\n");
}

#[test]
fn readme_example_runs_against_the_static_library() {
    let lib = lib_dir().join("libcortex_q4.a");
    assert!(lib.exists(), "no libcortex_q4.a");
    let args = vec![
        lib.display().to_string(),
        "-lpthread".into(),
        "-ldl".into(),
        "-lm".into(),
    ];
    let out = compile_and_run("readme_static", &readme_c_example(), &args);
    assert!(out.starts_with("cortex_q4 "), "{out}");
}

/// Names of the functions declared in the committed header.
fn declared_functions() -> Vec<String> {
    let header = std::fs::read_to_string(manifest_dir().join("include/cortex_q4.h")).unwrap();
    header
        .lines()
        .filter(|l| !l.starts_with([' ', '*', '/', '#']))
        .filter_map(|l| {
            let end = l.find('(')?;
            let start = l[..end].rfind(|c: char| !(c.is_alphanumeric() || c == '_'))? + 1;
            l[start..end]
                .starts_with("cq4_")
                .then(|| l[start..end].to_string())
        })
        .collect()
}

#[test]
fn shared_library_exports_everything_the_header_declares() {
    let names = declared_functions();
    assert!(names.len() >= 10, "only {names:?}");
    let mut source =
        String::from("#include <stdio.h>\n#include \"cortex_q4.h\"\nint main(void) {\n");
    source.push_str("    void (*fns[])(void) = {\n");
    for name in &names {
        source.push_str(&format!("        (void (*)(void))(&{name}),\n"));
    }
    source.push_str("    };\n    size_t n = 0;\n");
    source.push_str(
        "    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) n += fns[i] != NULL;\n",
    );
    source.push_str("    printf(\"%zu\\n\", n);\n    return 0;\n}\n");
    let out = compile_and_run("all_symbols", &source, &shared_link_args());
    assert_eq!(out.trim(), names.len().to_string());
}

/// The language levels the header claims (see its opening comment):
/// compiler flag, source file extension.
const LANGUAGE_LEVELS: [(&str, &str); 7] = [
    ("-std=c99", "c"),
    ("-std=c11", "c"),
    ("-std=c17", "c"),
    ("-std=c++11", "cpp"),
    ("-std=c++14", "cpp"),
    ("-std=c++17", "cpp"),
    ("-std=c++20", "cpp"),
];

/// User code with names of its own that a careless header would clash
/// with: a macro defined before the include, typedefs before and after it.
const USER_NAMES_SOURCE: &str = r#"#define BATCH_TILE 128
#define LANES 3
typedef int Kernel;
#include "cortex_q4.h"
typedef long Layout;
typedef double Options;
typedef unsigned Encoder;
typedef char user_tile_is_kept[BATCH_TILE == 128 && LANES == 3 ? 1 : -1];

static int user_code(void) {
    Kernel k = BATCH_TILE;
    Layout l = LANES;
    Options o = 0.5;
    Encoder e = 1u;
    return k + (int)l + (int)(o * 2.0) + (int)e;
}

int main(void) {
    cq4_options options = cq4_options_default();
    cq4_layout layout;
    enum cq4_status status = cq4_layout_get(2, 8, 4, &layout);
    return (user_code() == 133 && options.kernel == CQ4_KERNEL_AUTO && status == CQ4_OK) ? 0 : 1;
}
"#;

/// The compilers to try: gcc and g++ always (the C tests need them),
/// clang and clang++ where installed.
fn compilers() -> Vec<(&'static str, &'static str)> {
    let mut found = vec![("gcc", "g++")];
    let installed = |name: &str| Command::new(name).arg("--version").output().is_ok();
    if installed("clang") && installed("clang++") {
        found.push(("clang", "clang++"));
    } else {
        eprintln!("clang is not installed: compiling with gcc and g++ only");
    }
    found
}

#[test]
fn user_names_do_not_clash_with_the_header_in_every_claimed_language_level() {
    let dir = work_dir();
    let header = std::fs::read_to_string(manifest_dir().join("include/cortex_q4.h")).unwrap();
    for (flag, _) in LANGUAGE_LEVELS {
        let level = flag
            .trim_start_matches("-std=")
            .replace("c++", "C++")
            .replace('c', "C");
        assert!(
            header.contains(&level),
            "the header does not name {level} among its language levels"
        );
    }
    let mut failures = Vec::new();
    for (c, cxx) in compilers() {
        for (flag, ext) in LANGUAGE_LEVELS {
            let compiler = if ext == "c" { c } else { cxx };
            let source = dir.join(format!(
                "user_names_{}.{ext}",
                flag.replace(['-', '=', '+'], "_")
            ));
            std::fs::write(&source, USER_NAMES_SOURCE).unwrap();
            let out = Command::new(compiler)
                .args([
                    flag,
                    "-Wall",
                    "-Wextra",
                    "-pedantic",
                    "-Werror",
                    "-fsyntax-only",
                    "-I",
                ])
                .arg(manifest_dir().join("include"))
                .arg(&source)
                .output()
                .unwrap_or_else(|e| panic!("{compiler} cannot run: {e}"));
            if !out.status.success() {
                failures.push(format!(
                    "{compiler} {flag}:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
