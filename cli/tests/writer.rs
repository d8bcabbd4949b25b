//! The streaming writer: whatever tensors, names and metadata, in whatever
//! order they are written, the file is valid for the `safetensors` crate,
//! holds what was written, and keeps the alignment guarantee.

mod common;

use std::collections::{BTreeMap, HashMap};

use cortex_q4_cli::safetensors::{Dtype, Header};
use cortex_q4_cli::writer::{Output, Planned, DATA_ALIGN};
use proptest::prelude::*;
use safetensors::SafeTensors;

const DTYPES: [Dtype; 8] = [
    Dtype::U8,
    Dtype::Bool,
    Dtype::F16,
    Dtype::BF16,
    Dtype::F32,
    Dtype::I32,
    Dtype::F64,
    Dtype::I64,
];

fn planned() -> impl Strategy<Value = Vec<Planned>> {
    prop::collection::vec(
        (
            "[a-z.\"\\\\é]{1,12}",
            prop::sample::select(DTYPES.to_vec()),
            prop::collection::vec(0usize..5, 0..3),
        ),
        0..8,
    )
    .prop_map(|tensors| {
        let mut seen = std::collections::HashSet::new();
        tensors
            .into_iter()
            .filter(|(name, ..)| seen.insert(name.clone()))
            .map(|(name, dtype, shape)| Planned { name, dtype, shape })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn written_files_are_valid_aligned_and_hold_what_was_written(
        tensors in planned(),
        metadata in prop::collection::btree_map("[a-z_.]{1,8}", "[ -~]{0,8}", 0..4),
        seed in any::<u64>(),
    ) {
        let dir = common::scratch("writer");
        let path = dir.join("out.safetensors");
        let mut out = Output::create(&path, &tensors, &metadata).unwrap();
        // Each tensor's bytes, distinct per tensor; written in an order
        // other than the plan's.
        let data: HashMap<&str, Vec<u8>> = tensors
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let len = t.shape.iter().product::<usize>() * t.dtype.size();
                (t.name.as_str(), (0..len).map(|j| (i * 31 + j) as u8).collect())
            })
            .collect();
        let mut order: Vec<&Planned> = tensors.iter().collect();
        order.sort_by_key(|t| (t.name.len() as u64).wrapping_mul(seed | 1) % 7);
        for t in order {
            out.write(&t.name, &data[t.name.as_str()]).unwrap();
        }
        out.finish().unwrap();
        prop_assert_eq!(common::files_in(&dir), ["out.safetensors"]);

        let bytes = std::fs::read(&path).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let (n, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        prop_assert_eq!((8 + n) % DATA_ALIGN, 0);
        prop_assert_eq!(st.len(), tensors.len());
        for t in &tensors {
            let view = st.tensor(&t.name).unwrap();
            prop_assert_eq!(view.dtype().to_string(), t.dtype.name());
            prop_assert_eq!(view.shape(), &t.shape[..]);
            prop_assert_eq!(view.data(), &data[t.name.as_str()][..]);
            let at = 8 + n + meta.info(&t.name).unwrap().data_offsets.0;
            prop_assert_eq!(at % t.dtype.size(), 0, "{} at {}", t.name, at);
        }
        let theirs: BTreeMap<String, String> = meta.metadata().clone().unwrap_or_default().into_iter().collect();
        prop_assert_eq!(&theirs, &metadata);
        let header = Header::parse(&bytes).unwrap();
        prop_assert_eq!(header.metadata(), &metadata);
    }
}

#[test]
fn a_failed_write_leaves_no_file() {
    let dir = common::scratch("writer_dropped");
    let path = dir.join("out.safetensors");
    std::fs::write(&path, b"old").unwrap();
    let tensors = [Planned {
        name: "w".into(),
        dtype: Dtype::F32,
        shape: vec![2],
    }];
    let mut out = Output::create(&path, &tensors, &BTreeMap::new()).unwrap();
    assert_eq!(
        common::files_in(&dir).len(),
        2,
        "the temporary file beside the target"
    );
    out.write("w", &[0; 8]).unwrap();
    drop(out);
    assert_eq!(common::files_in(&dir), ["out.safetensors"]);
    assert_eq!(std::fs::read(&path).unwrap(), b"old");
}
