//! The command-line tool's safetensors reader
//! (`cortex_q4_cli::safetensors::Header::parse`) and its cortex_q4 layer
//! (`format::QuantizedFile::read`) on any bytes: never a panic, and a
//! header that parses keeps what `Header` promises.

#![no_main]

use cortex_q4_cli::format::QuantizedFile;
use cortex_q4_cli::safetensors::Header;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|file: &[u8]| {
    let Ok(header) = Header::parse(file) else {
        return;
    };
    // The tensors, sorted by offset, tile the data from its start to the
    // end of the file, each holding exactly its shape's elements.
    let mut at = header.data_start();
    assert!(8 <= at && at <= file.len());
    for t in header.tensors() {
        assert_eq!(t.range.start, at, "{}: a gap or an overlap", t.name);
        let elements = t.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        let bytes = elements.and_then(|n| n.checked_mul(t.dtype.size()));
        assert_eq!(
            bytes,
            Some(t.range.len()),
            "{}: bytes against shape",
            t.name
        );
        assert_eq!(header.get(&t.name), Some(t));
        at = t.range.end;
    }
    assert_eq!(at, file.len(), "data past the last tensor");
    let _ = QuantizedFile::read(&header);
});
