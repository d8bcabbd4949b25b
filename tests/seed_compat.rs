//! The six tests of the original candle implementation, ported with their
//! tolerances, plus byte-exact checks against the golden vectors (or, for
//! the format's worked example, bytes worked out by hand).

mod common;

use candle_core::{DType, Device, Result, Tensor};
use common::{bits, golden_case};
use cortex_q4::{pack_4bit_symmetric, unpack_4bit_symmetric};

fn assert_tensor_approx_eq(a: &Tensor, b: &Tensor, tol: f32) -> Result<()> {
    let a = a.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let b = b.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    assert_eq!(a.len(), b.len(), "tensor lengths differ");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!((x - y).abs() < tol, "index {i}: {x} vs {y} (tol {tol})");
    }
    Ok(())
}

/// Asserts the packed bytes and scales equal the named golden case.
fn assert_golden(packed: &Tensor, scales: &Tensor, name: &str) -> Result<()> {
    let case = golden_case(name);
    assert_eq!(
        packed.flatten_all()?.to_vec1::<u8>()?,
        case.packed,
        "{name}: bytes"
    );
    let scales = scales.flatten_all()?.to_vec1::<f32>()?;
    assert_eq!(bits(&scales), bits(&case.scales), "{name}: scales");
    Ok(())
}

fn mae(a: &Tensor, b: &Tensor) -> Result<f32> {
    let diff = (a.to_dtype(DType::F32)? - b)?;
    diff.abs()?.mean_all()?.to_scalar::<f32>()
}

#[test]
fn test_4bit_packing_simple() -> Result<()> {
    // An f64 tensor, as in the original test (unsuffixed literals).
    let tensor = Tensor::new(&[7.0, -5.6, 0.0, 3.5][..], &Device::Cpu)?.reshape((1, 4))?;
    let (packed, scales) = pack_4bit_symmetric(&tensor, 4)?;
    assert_eq!(packed.dims(), &[1, 2]);
    assert_eq!(scales.dims(), &[1, 1]);
    // The worked example: scale 1, q = [7, -6, 0, 4], nibbles [15, 2, 8, 12].
    assert_eq!(packed.flatten_all()?.to_vec1::<u8>()?, [0x2F, 0xC8]);
    assert_eq!(scales.flatten_all()?.to_vec1::<f32>()?, [1.0]);
    let unpacked = unpack_4bit_symmetric(&packed, &scales, (1, 4), 4)?;
    assert_eq!(
        unpacked.flatten_all()?.to_vec1::<f32>()?,
        [7.0, -6.0, 0.0, 4.0]
    );
    assert_tensor_approx_eq(&tensor, &unpacked, 1.0)
}

#[test]
fn test_4bit_packing_multi_group() -> Result<()> {
    let input: Vec<f32> = vec![
        1.0, -2.0, 3.0, 4.0, -1.0, 0.0, //
        -7.0, 2.0, 1.0, 0.5, -0.2, 3.0,
    ];
    let tensor = Tensor::from_vec(input, (2, 6), &Device::Cpu)?;
    let (packed, scales) = pack_4bit_symmetric(&tensor, 3)?;
    assert_eq!(packed.dims(), &[2, 4]); // 2 groups x ceil(3/2) bytes
    assert_eq!(scales.dims(), &[2, 2]);
    assert_golden(&packed, &scales, "seed_multi_group_g3")?;
    // Odd g: the spare high nibble of each group's last byte encodes 0.
    let bytes = packed.flatten_all()?.to_vec1::<u8>()?;
    assert!(bytes.iter().skip(1).step_by(2).all(|b| b >> 4 == 8));
    let unpacked = unpack_4bit_symmetric(&packed, &scales, (2, 6), 3)?;
    assert_tensor_approx_eq(&tensor, &unpacked, 0.5)
}

#[test]
fn test_4bit_packing_padding() -> Result<()> {
    let tensor = Tensor::new(&[1.0f32, -2.0, 3.0, -4.0, 2.0][..], &Device::Cpu)?.reshape((1, 5))?;
    let (packed, scales) = pack_4bit_symmetric(&tensor, 4)?;
    assert_eq!(packed.dims(), &[1, 4]);
    assert_eq!(scales.dims(), &[1, 2]);
    assert_golden(&packed, &scales, "seed_padding")?;
    // Padding elements are zeros: nibble 8 in the last group's tail.
    assert_eq!(packed.flatten_all()?.to_vec1::<u8>()?[3], 0x88);
    let unpacked = unpack_4bit_symmetric(&packed, &scales, (1, 5), 4)?;
    assert_tensor_approx_eq(&tensor.narrow(1, 0, 5)?, &unpacked.narrow(1, 0, 5)?, 0.5)
}

#[test]
fn test_4bit_quantization_range() -> Result<()> {
    let tensor = Tensor::new(&[10.0f32, -15.0, 0.0, 7.0][..], &Device::Cpu)?.reshape((1, 4))?;
    let (packed, scales) = pack_4bit_symmetric(&tensor, 4)?;
    assert_golden(&packed, &scales, "seed_saturation")?;
    let unpacked = unpack_4bit_symmetric(&packed, &scales, (1, 4), 4)?;
    let scale = scales.flatten_all()?.to_vec1::<f32>()?[0];
    for val in unpacked.flatten_all()?.to_vec1::<f32>()? {
        assert!(
            val >= -8.0 * scale - 1e-5 && val <= 7.0 * scale + 1e-5,
            "{val} out of range"
        );
    }
    Ok(())
}

#[test]
fn test_4bit_round_trip_error() -> Result<()> {
    let input: Vec<f32> = (0..32).map(|i| (i as f32 - 16.0) * 0.1).collect();
    let tensor = Tensor::from_vec(input, (4, 8), &Device::Cpu)?;
    let (packed, scales) = pack_4bit_symmetric(&tensor, 8)?;
    assert_golden(&packed, &scales, "seed_ramp_4x8")?;
    let unpacked = unpack_4bit_symmetric(&packed, &scales, (4, 8), 8)?;
    let mae = mae(&tensor, &unpacked)?;
    assert!(mae < 0.05, "round-trip MAE too high: {mae}");
    Ok(())
}

#[test]
fn test_4bit_standalone_functionality() -> Result<()> {
    let dev = Device::Cpu;
    type Case = (&'static str, Vec<f32>, (usize, usize), usize);
    let cases: [Case; 3] = [
        ("spec_worked_example", vec![7.0, -5.6, 0.0, 3.5], (1, 4), 4),
        (
            "seed_multi_group_g3",
            vec![
                1.0, -2.0, 3.0, 4.0, -1.0, 0.0, -7.0, 2.0, 1.0, 0.5, -0.2, 3.0,
            ],
            (2, 6),
            3,
        ),
        ("seed_padding", vec![1.0, -2.0, 3.0, -4.0, 2.0], (1, 5), 4),
    ];
    for (name, input, shape, g) in cases {
        let tensor = Tensor::from_vec(input, shape, &dev)?;
        let (packed, scales) = pack_4bit_symmetric(&tensor, g)?;
        assert_golden(&packed, &scales, name)?;
        let unpacked = unpack_4bit_symmetric(&packed, &scales, shape, g)?;
        let mae = mae(&tensor, &unpacked)?;
        assert!(mae < 0.5, "{name}: MAE too high: {mae}");
    }
    Ok(())
}

#[test]
fn bad_calls_are_errors_not_panics() -> Result<()> {
    let dev = Device::Cpu;
    let t1 = Tensor::zeros(8, DType::F32, &dev)?;
    let t3 = Tensor::zeros((2, 2, 2), DType::F32, &dev)?;
    let t2 = Tensor::zeros((2, 8), DType::F32, &dev)?;
    assert!(pack_4bit_symmetric(&t1, 4).is_err());
    assert!(pack_4bit_symmetric(&t3, 4).is_err());
    assert!(pack_4bit_symmetric(&t2, 0).is_err());
    assert!(pack_4bit_symmetric(&t2.to_dtype(DType::U8)?, 4).is_err());
    let (packed, scales) = pack_4bit_symmetric(&t2, 4)?;
    assert!(unpack_4bit_symmetric(&packed, &scales, (2, 8), 0).is_err());
    assert!(unpack_4bit_symmetric(&packed, &scales, (3, 8), 4).is_err());
    assert!(unpack_4bit_symmetric(&packed, &scales, (2, 9), 4).is_err());
    assert!(unpack_4bit_symmetric(&packed, &scales, (2, 8), 2).is_err());
    assert!(unpack_4bit_symmetric(&scales, &scales, (2, 8), 4).is_err());
    assert!(unpack_4bit_symmetric(&packed, &packed.narrow(1, 0, 2)?, (2, 8), 4).is_err());
    let msg = pack_4bit_symmetric(&t2, 0).unwrap_err().to_string();
    assert!(msg.contains("group size 0"), "unhelpful message: {msg}");
    Ok(())
}
