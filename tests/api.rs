//! The Rust API's own promises: a quantizer keeps every setting it is
//! given, the allocating forms return what the buffer forms write and
//! refuse what they refuse, and an owned packed matrix is viewed as the
//! borrowed one.

use cortex_q4::{
    Buffer, Encoder, Error, Kernel, Options, PackedMatrix, Precision, Quantizer, MAX_GROUP_SIZE,
};

fn weights(rows: usize, cols: usize) -> Vec<f32> {
    (0..rows * cols)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 9.0)
        .collect()
}

#[test]
fn a_quantizer_keeps_its_settings() {
    let importance = [1.0f32; 8];
    let encoder = Encoder::Search {
        importance: Some(&importance),
    };
    let options = Options::default()
        .with_kernel(Kernel::Scalar)
        .with_threads(3);
    let q = Quantizer::new(8)
        .with_options(options)
        .with_encoder(encoder);
    assert_eq!(
        (q.group_size(), q.encoder(), q.options()),
        (8, encoder, options)
    );
    let q = Quantizer::new(16)
        .with_encoder(encoder)
        .with_options(options);
    assert_eq!(
        (q.group_size(), q.encoder(), q.options()),
        (16, encoder, options)
    );
    let plain = Quantizer::new(4);
    assert_eq!(
        (plain.encoder(), plain.options()),
        (Encoder::AbsMax, Options::default())
    );
}

#[test]
fn to_vec_forms_return_what_buffer_forms_write() {
    let (rows, cols, g) = (3, 100, 32);
    let w = weights(rows, cols);
    for encoder in [
        Encoder::AbsMax,
        Encoder::Signed,
        Encoder::Search { importance: None },
    ] {
        let q = Quantizer::new(g)
            .with_encoder(encoder)
            .with_options(Options::default().with_threads(0));
        let owned = q.pack_to_vec(&w, rows, cols).unwrap();
        let layout = q.layout(rows, cols).unwrap();
        let (mut p, mut s) = (
            vec![0xA5u8; layout.packed_len() + 2],
            vec![-1f32; layout.scales_len() + 2],
        );
        assert_eq!(q.pack(&w, rows, cols, &mut p, &mut s).unwrap(), layout);
        assert_eq!(*owned.layout(), layout, "{encoder:?}");
        assert_eq!(owned.packed(), &p[..layout.packed_len()], "{encoder:?}");
        assert_eq!(owned.scales(), &s[..layout.scales_len()], "{encoder:?}");

        let unpacked: Vec<f32> = q
            .unpack_to_vec(owned.packed(), owned.scales(), rows, cols)
            .unwrap();
        let mut dst = vec![f32::NAN; rows * cols + 1];
        assert_eq!(q.unpack(&p, &s, rows, cols, &mut dst).unwrap(), layout);
        assert_eq!(unpacked, dst[..rows * cols]);
        assert!(
            dst[rows * cols].is_nan(),
            "only the layout's elements are written"
        );
    }
}

#[test]
fn to_vec_forms_refuse_what_buffer_forms_refuse() {
    let w = weights(2, 8);
    let short = [1f32; 7];
    let refusals = [
        (Quantizer::new(0), 2, Error::BadGroupSize { group_size: 0 }),
        (
            Quantizer::new(MAX_GROUP_SIZE + 1),
            2,
            Error::BadGroupSize {
                group_size: MAX_GROUP_SIZE + 1,
            },
        ),
        (
            Quantizer::new(8),
            3,
            Error::InputTooShort {
                buffer: Buffer::Source,
                needed: 24,
                got: 16,
            },
        ),
        (
            Quantizer::new(8).with_encoder(Encoder::Search {
                importance: Some(&short),
            }),
            2,
            Error::InputTooShort {
                buffer: Buffer::Importance,
                needed: 8,
                got: 7,
            },
        ),
    ];
    for (q, rows, error) in refusals {
        let (mut p, mut s) = (vec![0u8; 64], vec![0f32; 8]);
        assert_eq!(q.pack(&w, rows, 8, &mut p, &mut s), Err(error));
        assert_eq!(q.pack_to_vec(&w, rows, 8), Err(error));
    }
    let q = Quantizer::new(8);
    let (p, s) = q.pack_to_vec(&w, 2, 8).unwrap().into_parts();
    let short_scales = Error::InputTooShort {
        buffer: Buffer::Scales,
        needed: 2,
        got: 1,
    };
    let mut dst = [0f32; 16];
    assert_eq!(q.unpack(&p, &s[..1], 2, 8, &mut dst), Err(short_scales));
    assert_eq!(q.unpack_to_vec::<f32>(&p, &s[..1], 2, 8), Err(short_scales));
    if let Some(kernel) = Kernel::ALL.into_iter().find(|k| !k.is_supported()) {
        let q = q.with_options(Options::default().with_kernel(kernel));
        let unsupported = Error::UnsupportedKernel { kernel };
        assert_eq!(q.pack_to_vec(&w, 2, 8), Err(unsupported));
        assert_eq!(q.unpack_to_vec::<f32>(&p, &s, 2, 8), Err(unsupported));
    }
}

#[test]
fn an_owned_matrix_is_viewed_as_the_borrowed_one() {
    let (rows, cols, g) = (5, 70, 32);
    let q = Quantizer::new(g);
    let owned = q.pack_to_vec(&weights(rows, cols), rows, cols).unwrap();
    let view = owned.as_matrix();
    let borrowed = PackedMatrix::new(owned.packed(), owned.scales(), rows, cols, g).unwrap();
    assert_eq!(view.layout(), borrowed.layout());
    assert_eq!(
        (view.packed(), view.scales()),
        (owned.packed(), owned.scales())
    );
    let x = weights(2, cols);
    let (mut a, mut b) = (vec![0f32; 2 * rows], vec![1f32; 2 * rows]);
    let opts = Options::default();
    view.matmul(&opts, &x, 2, Precision::Exact, &mut a).unwrap();
    borrowed
        .matmul(&opts, &x, 2, Precision::Exact, &mut b)
        .unwrap();
    assert_eq!(a, b);
    // Longer buffers are cut to the layout.
    let (mut p, mut s) = owned.clone().into_parts();
    p.push(0);
    s.push(1.0);
    let longer = PackedMatrix::new(&p, &s, rows, cols, g).unwrap();
    assert_eq!(
        (longer.packed(), longer.scales()),
        (owned.packed(), owned.scales())
    );
}
