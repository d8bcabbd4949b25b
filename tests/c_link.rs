//! C programs compiled by the system compiler against the committed header
//! and linked against the built libraries: the README's example, and one
//! program that takes the address of every function the header declares.

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
    let out = Command::new(&cc)
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-I"])
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
