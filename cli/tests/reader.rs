//! The reader against the `safetensors` crate on valid files and on files
//! broken in every byte: whatever the reader accepts, the crate reads the
//! same way; what it refuses and the crate accepts is only what it refuses
//! on purpose (duplicate keys, sub-byte dtypes). It never panics.

mod common;

use common::{file_bytes, Tensor};
use cortex_q4_cli::safetensors::{FormatError, Header};
use proptest::prelude::*;
use safetensors::SafeTensors;

/// Checks `bytes` with both readers and compares what they say.
fn compare(bytes: &[u8]) {
    let ours = Header::parse(bytes);
    let theirs = SafeTensors::deserialize(bytes);
    match (&ours, &theirs) {
        (Ok(header), Ok(st)) => {
            assert_eq!(header.tensors().len(), st.len());
            let (n, meta) = SafeTensors::read_metadata(bytes).unwrap();
            assert_eq!(header.data_start(), 8 + n);
            for t in header.tensors() {
                let info = meta.info(&t.name).expect("the same names");
                assert_eq!(t.dtype.name(), info.dtype.to_string());
                assert_eq!(t.shape, info.shape);
                let (b, e) = info.data_offsets;
                assert_eq!(t.range, 8 + n + b..8 + n + e);
            }
            let theirs = meta.metadata().clone().unwrap_or_default();
            assert_eq!(header.metadata().len(), theirs.len());
            for (k, v) in header.metadata() {
                assert_eq!(theirs.get(k), Some(v));
            }
        }
        (Ok(_), Err(e)) => panic!("accepted what the crate refuses: {e}"),
        (Err(FormatError::DuplicateKey { .. }), Ok(_)) => {}
        (Err(FormatError::UnknownDtype { dtype, .. }), Ok(_)) => {
            assert!(
                dtype.starts_with("F4") || dtype.starts_with("F6"),
                "{dtype}"
            )
        }
        (Err(e), Ok(_)) => panic!("refused what the crate accepts: {e}"),
        (Err(_), Err(_)) => {}
    }
}

fn valid_file() -> Vec<u8> {
    file_bytes(
        &[
            Tensor::f32("a", &[2, 3], &[1.0; 6]),
            Tensor::new("b", "U8", &[5], vec![7; 5]),
            Tensor::f16("c.weight", &[1, 2], &[0.5, 2.0]),
            Tensor::new("d", "I64", &[0], vec![]),
        ],
        &[("format", "pt"), ("k", "v")],
    )
}

#[test]
fn a_valid_file_is_read_as_the_crate_reads_it() {
    let bytes = valid_file();
    assert!(Header::parse(&bytes).is_ok());
    compare(&bytes);
}

#[test]
fn every_prefix_and_extension_of_a_valid_file_is_refused() {
    let bytes = valid_file();
    for len in 0..bytes.len() {
        assert!(
            Header::parse(&bytes[..len]).is_err(),
            "prefix of {len} bytes"
        );
        compare(&bytes[..len]);
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        Header::parse(&longer),
        Err(FormatError::Gap { .. })
    ));
}

#[test]
fn sub_byte_dtypes_are_refused_by_name() {
    let header = r#"{"w":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}"#;
    let bytes = common::raw_file(header, &[0]);
    assert!(SafeTensors::deserialize(&bytes).is_ok());
    assert_eq!(
        Header::parse(&bytes).unwrap_err(),
        FormatError::UnknownDtype {
            name: "w".into(),
            dtype: "F4".into()
        }
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn files_with_a_changed_byte_are_read_as_the_crate_reads_them(
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        // Mostly characters JSON gives meaning to, so that many mutants
        // still parse.
        json_byte in prop::sample::select(b"{}[],:\"0123456789 FUIBE_-.\\ae".to_vec()),
        use_json in any::<bool>(),
    ) {
        let mut bytes = valid_file();
        let i = at.index(bytes.len());
        bytes[i] = if use_json { json_byte } else { byte };
        compare(&bytes);
    }

    #[test]
    fn files_with_a_changed_length_or_offset_are_read_as_the_crate_reads_them(
        len in 0u64..400,
        cut in 0usize..8,
    ) {
        let mut bytes = valid_file();
        bytes[..8].copy_from_slice(&len.to_le_bytes());
        let keep = bytes.len() - cut;
        compare(&bytes[..keep]);
    }
}
