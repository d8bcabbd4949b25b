//! The golden vectors (derived by tests/golden/gen_golden.py, independently
//! of the crate) through every Rust surface: slice API, candle API, and the
//! f16 / bf16 / f64 paths where the input is exactly representable.

mod common;

#[cfg(feature = "candle")]
use candle_core::{Device, Tensor};
use common::{assert_same_floats, bits, golden_cases, Case};
use cortex_q4::Quantizer;
use half::{bf16, f16};

fn check_pack<T: cortex_q4::Element>(case: &Case, src: &[T], what: &str) {
    let (packed, scales) = Quantizer::new(case.group_size)
        .pack_to_vec(src, case.rows, case.cols)
        .unwrap()
        .into_parts();
    assert_eq!(packed, case.packed, "{}: {what} packed bytes", case.name);
    assert_eq!(
        bits(&scales),
        bits(&case.scales),
        "{}: {what} scales",
        case.name
    );
}

#[test]
fn golden_file_covers_the_required_cases() {
    let cases = golden_cases();
    let pack_cases: Vec<&Case> = cases.iter().filter(|c| c.is_pack).collect();
    for g in [1, 3, 4, 32, 64, 128] {
        assert!(
            pack_cases.iter().any(|c| c.group_size == g),
            "no case with g = {g}"
        );
    }
    let any = |f: &dyn Fn(&Case) -> bool| pack_cases.iter().any(|c| f(c));
    assert!(any(&|c| c.cols % c.group_size != 0 && c.cols > c.group_size));
    assert!(any(&|c| c.group_size > c.cols && c.cols > 0));
    assert!(any(&|c| c.rows == 0) && any(&|c| c.cols == 0));
    assert!(any(&|c| c.input.iter().any(|v| v.is_nan())));
    assert!(any(&|c| c.input.iter().any(|v| v.is_infinite())));
    assert!(any(&|c| c.input.iter().any(|v| v.is_subnormal())));
    assert!(any(&|c| c.input.iter().any(|v| v.to_bits() == 0x8000_0000)));
    assert!(cases.iter().any(|c| c.scales.iter().any(|s| *s < 0.0)));
}

#[test]
fn slice_api_matches_golden() {
    for case in golden_cases() {
        if case.is_pack {
            check_pack(&case, &case.input, "f32");
            // Caller buffers longer than needed: only the prefix is written.
            let mut packed = vec![0xA5u8; case.packed.len() + 3];
            let mut scales = vec![-9.0f32; case.scales.len() + 3];
            Quantizer::new(case.group_size)
                .pack(&case.input, case.rows, case.cols, &mut packed, &mut scales)
                .unwrap();
            assert_eq!(
                &packed[..case.packed.len()],
                &case.packed[..],
                "{}",
                case.name
            );
            assert_eq!(&packed[case.packed.len()..], &[0xA5; 3], "{}", case.name);
            assert_eq!(&scales[case.scales.len()..], &[-9.0; 3], "{}", case.name);
        }
        let out: Vec<f32> = Quantizer::new(case.group_size)
            .unpack_to_vec(&case.packed, &case.scales, case.rows, case.cols)
            .unwrap();
        assert_same_floats(&out, &case.unpacked, &format!("{} unpack", case.name));
    }
}

#[test]
fn half_and_f64_inputs_match_golden_where_exact() {
    for case in golden_cases().iter().filter(|c| c.is_pack) {
        let f64s: Vec<f64> = case.input.iter().map(|&v| v as f64).collect();
        check_pack(case, &f64s, "f64");
        if case.input.iter().any(|v| v.is_nan()) {
            continue;
        }
        let f16s: Vec<f16> = case.input.iter().map(|&v| f16::from_f32(v)).collect();
        if f16s
            .iter()
            .zip(&case.input)
            .all(|(h, v)| h.to_f32().to_bits() == v.to_bits())
        {
            check_pack(case, &f16s, "f16");
        }
        let bf16s: Vec<bf16> = case.input.iter().map(|&v| bf16::from_f32(v)).collect();
        if bf16s
            .iter()
            .zip(&case.input)
            .all(|(h, v)| h.to_f32().to_bits() == v.to_bits())
        {
            check_pack(case, &bf16s, "bf16");
        }
    }
}

#[test]
fn half_outputs_are_the_rounded_f32_results() {
    for case in golden_cases() {
        let (r, c, g) = (case.rows, case.cols, case.group_size);
        let q = Quantizer::new(g);
        let f16s: Vec<f16> = q.unpack_to_vec(&case.packed, &case.scales, r, c).unwrap();
        let bf16s: Vec<bf16> = q.unpack_to_vec(&case.packed, &case.scales, r, c).unwrap();
        for (i, want) in case.unpacked.iter().enumerate() {
            let (h, b) = (f16s[i].to_f32(), bf16s[i].to_f32());
            if want.is_nan() {
                assert!(h.is_nan() && b.is_nan(), "{} [{i}]", case.name);
            } else {
                assert_eq!(
                    f16s[i].to_bits(),
                    f16::from_f32(*want).to_bits(),
                    "{} [{i}]",
                    case.name
                );
                assert_eq!(
                    bf16s[i].to_bits(),
                    bf16::from_f32(*want).to_bits(),
                    "{} [{i}]",
                    case.name
                );
            }
        }
    }
}

#[cfg(feature = "candle")]
#[test]
fn candle_api_matches_golden() {
    let dev = Device::Cpu;
    for case in golden_cases() {
        let (r, c, g) = (case.rows, case.cols, case.group_size);
        if case.is_pack {
            let t = Tensor::from_vec(case.input.clone(), (r, c), &dev).unwrap();
            let (packed, scales) = cortex_q4::pack_4bit_symmetric(&t, g).unwrap();
            assert_eq!(
                packed.dims(),
                [r, c.div_ceil(g) * g.div_ceil(2)],
                "{}",
                case.name
            );
            assert_eq!(scales.dims(), [r, c.div_ceil(g)], "{}", case.name);
            assert_eq!(
                packed.flatten_all().unwrap().to_vec1::<u8>().unwrap(),
                case.packed,
                "{}",
                case.name
            );
            let got_scales = scales.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(bits(&got_scales), bits(&case.scales), "{}", case.name);
        }
        let layout = cortex_q4::Layout::new(r, c, g).unwrap();
        let packed =
            Tensor::from_vec(case.packed.clone(), (r, layout.packed_row_bytes()), &dev).unwrap();
        let scales =
            Tensor::from_vec(case.scales.clone(), (r, layout.groups_per_row()), &dev).unwrap();
        let out = cortex_q4::unpack_4bit_symmetric(&packed, &scales, (r, c), g).unwrap();
        assert_eq!(out.dims(), [r, c]);
        let out = out.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_same_floats(
            &out,
            &case.unpacked,
            &format!("{} candle unpack", case.name),
        );
    }
}
