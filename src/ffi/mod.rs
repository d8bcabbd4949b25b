//! The C ABI: a thin layer that only checks and converts, then calls the
//! safe slice API. Each `extern "C"` function is its declaration and docs
//! (cbindgen reads them for the header) and a one-line body that builds a
//! call (`call::Call`, its fields declared once with `call_kind!`) and runs
//! it through `call::checked`, the one place that checks, in the header's
//! order, and that never unwinds into C.

/// The body of an `extern "C"` function that takes pointers: runs `$call`,
/// built from the arguments as they came, through the checked path.
macro_rules! forward {
    ($call:expr) => {
        // SAFETY: the function's `# Safety` asks of its caller what
        // `checked` needs: each pointer NULL or valid for its declared length.
        unsafe { $crate::ffi::call::checked($call) }
    };
}

#[macro_use]
mod call;
mod encoders;
mod hessian;
mod matmul;
mod options;
mod pack_unpack;
mod prepared;
mod q4_0;
mod quality;
mod status;
mod version;

pub use encoders::*;
pub use hessian::*;
pub use matmul::*;
pub use options::*;
pub use pack_unpack::*;
pub use prepared::*;
pub use q4_0::*;
pub use quality::*;
pub use status::*;
pub use version::*;

use std::panic::{self, AssertUnwindSafe};

/// Runs the body of an `extern "C"` function, turning a panic (a library
/// bug) into `CQ4_ERR_INTERNAL` instead of unwinding across the boundary.
fn guard(body: impl FnOnce() -> Result<(), cq4_status>) -> cq4_status {
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => cq4_status::CQ4_OK,
        Ok(Err(status)) => status,
        Err(_) => cq4_status::CQ4_ERR_INTERNAL,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{Encoder, Hessian, Options, Quantizer};

    #[test]
    fn a_panic_becomes_an_internal_error() {
        let status = guard(|| panic!("a bug"));
        assert_eq!(status, cq4_status::CQ4_ERR_INTERNAL);
        assert_eq!(
            guard(|| Err(cq4_status::CQ4_ERR_NULL_POINTER)),
            cq4_status::CQ4_ERR_NULL_POINTER
        );
        assert_eq!(guard(|| Ok(())), cq4_status::CQ4_OK);
    }

    /// The committed header: the contract the C side compiles against,
    /// read as text so that tests can hold the library to it.
    pub(crate) const HEADER: &str =
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/include/cortex_q4.h"));

    /// `text` with its comments and string literals blanked out (newlines
    /// kept, so that preprocessor lines stay lines).
    fn strip_comments(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, chars.peek()) {
                ('/', Some('*')) => {
                    chars.next();
                    let mut last = ' ';
                    for c in chars.by_ref() {
                        if c == '\n' {
                            out.push('\n');
                        }
                        if last == '*' && c == '/' {
                            break;
                        }
                        last = c;
                    }
                    out.push(' ');
                }
                ('/', Some('/')) => {
                    for c in chars.by_ref() {
                        if c == '\n' {
                            out.push('\n');
                            break;
                        }
                    }
                }
                ('"', _) => {
                    let mut escaped = false;
                    for c in chars.by_ref() {
                        if c == '"' && !escaped {
                            break;
                        }
                        escaped = c == '\\' && !escaped;
                    }
                    out.push_str("\"\"");
                }
                _ => out.push(c),
            }
        }
        out
    }

    /// C keywords and the standard types the header may use.
    const NOT_DECLARED: &[&str] = &[
        "typedef",
        "struct",
        "enum",
        "union",
        "const",
        "volatile",
        "restrict",
        "extern",
        "static",
        "inline",
        "void",
        "char",
        "short",
        "int",
        "long",
        "signed",
        "unsigned",
        "float",
        "double",
        "_Bool",
        "size_t",
        "ptrdiff_t",
        "int8_t",
        "int16_t",
        "int32_t",
        "int64_t",
        "uint8_t",
        "uint16_t",
        "uint32_t",
        "uint64_t",
        "intptr_t",
        "uintptr_t",
    ];

    /// Every name `header` puts into a C or C++ translation unit that
    /// includes it: macros (`#define`), tags (after `struct`, `enum`,
    /// `union`), enumerators, and every other identifier at file scope
    /// (typedef names, functions, variables, the types they use). Field and
    /// parameter names are the only identifiers left out.
    pub(crate) fn declared_names(header: &str) -> Vec<String> {
        #[derive(Clone, Copy, PartialEq)]
        enum Body {
            Enum,
            Other,
        }
        let text = strip_comments(header);
        let mut names = Vec::new();
        let mut code = String::new();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let Some(directive) = line.trim_start().strip_prefix('#') else {
                code.push_str(line);
                code.push('\n');
                continue;
            };
            let mut words = directive.split_whitespace();
            match words.next() {
                Some("define") => {
                    let name = words.next().unwrap_or_default();
                    let end = name.find('(').unwrap_or(name.len());
                    names.push(name[..end].to_string());
                }
                // The `extern "C"` braces for C++: skipped, and they must
                // hold nothing else.
                Some("ifdef") if words.next() == Some("__cplusplus") => {
                    for inner in lines.by_ref() {
                        let inner = inner.trim();
                        if inner.starts_with("#endif") {
                            break;
                        }
                        assert!(
                            matches!(inner, "extern \"\" {" | "}" | ""),
                            "unexpected in a C++-only block: {inner}"
                        );
                    }
                }
                _ => {}
            }
        }
        let mut bodies: Vec<Body> = Vec::new();
        let mut parens = 0usize;
        let mut pending = Body::Other;
        let mut after_tag_keyword = false;
        let mut chars = code.char_indices().peekable();
        while let Some((start, c)) = chars.next() {
            if c.is_ascii_alphabetic() || c == '_' || c.is_ascii_digit() {
                let mut end = start + c.len_utf8();
                while let Some(&(i, c)) = chars.peek() {
                    if !(c.is_ascii_alphanumeric() || c == '_') {
                        break;
                    }
                    end = i + c.len_utf8();
                    chars.next();
                }
                let word = &code[start..end];
                if c.is_ascii_digit() {
                    continue;
                }
                let at_file_scope = bodies.is_empty() && parens == 0;
                let in_enum = bodies.last() == Some(&Body::Enum) && parens == 0;
                if after_tag_keyword || in_enum || (at_file_scope && !NOT_DECLARED.contains(&word))
                {
                    names.push(word.to_string());
                }
                after_tag_keyword = matches!(word, "struct" | "enum" | "union");
                if after_tag_keyword {
                    pending = if word == "enum" {
                        Body::Enum
                    } else {
                        Body::Other
                    };
                }
                continue;
            }
            if c.is_whitespace() {
                continue;
            }
            after_tag_keyword = false;
            match c {
                '{' => {
                    bodies.push(pending);
                    pending = Body::Other;
                }
                '}' => {
                    bodies.pop();
                }
                '(' => parens += 1,
                ')' => parens -= 1,
                ';' => pending = Body::Other,
                _ => {}
            }
        }
        names
    }

    /// The enumerators of `typedef enum NAME { ... }` in the header, with
    /// the values it gives them.
    pub(crate) fn header_enum(name: &str) -> Vec<(String, i64)> {
        let text = strip_comments(HEADER);
        let open = format!("typedef enum {name} {{");
        let start = text.find(&open).unwrap_or_else(|| panic!("no {open}")) + open.len();
        let body = &text[start..start + text[start..].find('}').unwrap()];
        let values: Vec<(String, i64)> = body
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                let (name, value) = item.split_once('=').expect("every value is explicit");
                (name.trim().to_string(), value.trim().parse().unwrap())
            })
            .collect();
        assert!(!values.is_empty(), "{name} has no enumerators");
        values
    }

    /// The value of enumerator `name` in the header.
    pub(crate) fn header_value(name: &str) -> i64 {
        let text = strip_comments(HEADER);
        let at = text
            .find(&format!("  {name} = "))
            .unwrap_or_else(|| panic!("no {name}"));
        let rest = &text[at + name.len() + 5..];
        rest[..rest.find(',').unwrap()].trim().parse().unwrap()
    }

    /// The replacement text of object-like macro `name` in the header.
    pub(crate) fn header_define(name: &str) -> &'static str {
        let prefix = format!("#define {name} ");
        HEADER
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no #define {name}"))
            .trim()
    }

    #[test]
    fn encoder_ids_are_the_headers() {
        let (rows, cols, g) = (3, 16, 8);
        let src: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 37 % 29) as f32 - 13.0) / 3.0)
            .collect();
        let x: Vec<f32> = (0..40 * cols)
            .map(|i| ((i * 53 % 31) as f32 - 15.0) / 4.0)
            .collect();
        let mut hessian = Hessian::new(cols).unwrap();
        hessian.accumulate(&Options::default(), &x, 40).unwrap();
        let h = hessian.matrix();
        let pack = |c: &cq4_encoder_options, packed: &mut [u8], scales: &mut [f32]| {
            // SAFETY: every buffer is live for its length.
            unsafe {
                cq4_pack_encoded_f32(
                    src.as_ptr(),
                    src.len(),
                    rows,
                    cols,
                    g,
                    packed.as_mut_ptr(),
                    packed.len(),
                    scales.as_mut_ptr(),
                    scales.len(),
                    std::ptr::null(),
                    c,
                )
            }
        };
        let ids = header_enum("cq4_encoder");
        assert_eq!(ids.len(), 4, "{ids:?}");
        let mut outputs = Vec::new();
        for (name, id) in &ids {
            let encoder = match name.as_str() {
                "CQ4_ENCODER_ABSMAX" => Encoder::AbsMax,
                "CQ4_ENCODER_SIGNED" => Encoder::Signed,
                "CQ4_ENCODER_SEARCH" => Encoder::Search { importance: None },
                "CQ4_ENCODER_ERROR_COMPENSATING" => Encoder::error_compensating(h),
                other => panic!("a header encoder this test does not know: {other}"),
            };
            let want = Quantizer::new(g)
                .with_encoder(encoder)
                .pack_to_vec(&src, rows, cols)
                .unwrap();
            let mut packed = vec![0u8; want.packed().len()];
            let mut scales = vec![0f32; want.scales().len()];
            let mut c = cq4_encoder_options_default();
            c.encoder = *id as u32;
            if matches!(encoder, Encoder::ErrorCompensating { .. }) {
                c.hessian = h.as_ptr();
                c.hessian_len = h.len();
            }
            let status = pack(&c, &mut packed, &mut scales);
            assert_eq!(status as i64, header_value("CQ4_OK"), "{name}");
            assert_eq!(
                (packed.as_slice(), scales.as_slice()),
                (want.packed(), want.scales()),
                "{name}"
            );
            outputs.push((packed, scales));
        }
        // The inputs tell the four apart.
        for (i, a) in outputs.iter().enumerate() {
            assert!(outputs[..i].iter().all(|b| a != b), "{i}");
        }
        let default = cq4_encoder_options_default();
        assert_eq!(default.encoder as i64, header_value("CQ4_ENCODER_ABSMAX"));
        let mut c = default;
        c.encoder = ids.iter().map(|(_, id)| *id as u32).max().unwrap() + 1;
        let mut packed = vec![0u8; 64];
        let mut scales = vec![0f32; 8];
        let status = pack(&c, &mut packed, &mut scales);
        assert_eq!(status as i64, header_value("CQ4_ERR_BAD_OPTIONS"));
    }

    #[test]
    fn the_scanner_finds_every_kind_of_name() {
        let sample = "/* a Kernel comment */\n#define BATCH_TILE 64\n#define F(x) x\n\
            typedef struct Kernel Kernel;\ntypedef enum cq4_e {\n  LEAK_A = 0,\n  LEAK_B = 1,\n} \
            cq4_e;\ntypedef struct cq4_s {\n  struct Layout *field;\n  size_t len;\n} cq4_s;\n\
            typedef uint32_t Options;\nextern const int COUNT;\nvoid *leak_fn(int arg);\n\
            #ifdef __cplusplus\nextern \"C\" {\n#endif\n";
        let names = declared_names(sample);
        for name in [
            "BATCH_TILE",
            "F",
            "Kernel",
            "cq4_e",
            "LEAK_A",
            "LEAK_B",
            "cq4_s",
            "Layout",
            "Options",
            "COUNT",
            "leak_fn",
        ] {
            assert!(
                names.iter().any(|n| n == name),
                "{name} not found in {names:?}"
            );
        }
        for name in ["field", "len", "arg", "size_t", "uint32_t", "comment"] {
            assert!(
                !names.iter().any(|n| n == name),
                "{name} found in {names:?}"
            );
        }
    }

    #[test]
    fn the_header_declares_cq4_items_only() {
        let names = declared_names(HEADER);
        for want in [
            "cq4_pack_f32",
            "cq4_layout",
            "CQ4_OK",
            "CQ4_KERNEL_NEON",
            "CQ4_ABI_VERSION",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} not found in {names:?}"
            );
        }
        for name in names {
            assert!(
                name.starts_with("cq4_") || name.starts_with("CQ4_") || name == "CORTEX_Q4_H",
                "the header declares {name}: exclude it in cbindgen.toml"
            );
        }
    }
}
