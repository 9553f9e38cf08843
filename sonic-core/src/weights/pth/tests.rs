use std::io::{Cursor, Read, Write};
use std::path::PathBuf;

use safetensors::{Dtype, SafeTensors};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::*;

/// Written by `tests/fixtures/gen_pth.py`.
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/pth");

/// The keys of `mixed.pth`, in the order the generator inserts them.
const MIXED_KEYS: [&str; 20] = [
    "conv.weight",
    "conv.bias",
    "norm.weight",
    "norm.running_mean",
    "norm.num_batches_tracked",
    "position_ids",
    "scale",
    "proj.weight_t",
    "slice",
    "shared.a",
    "shared.b",
    "cols",
    "expanded",
    "empty",
    "param",
    "ints.i32",
    "ints.i16",
    "ints.i8",
    "ints.u8",
    "mask",
];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(FIXTURES).join(name)
}

fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("fixture exists; run tests/fixtures/gen_pth.py")
}

fn assert_names_file(err: &PthError, file: &str) {
    let message = err.to_string();
    assert!(message.contains(file), "{message:?} should name {file}");
}

fn assert_matches_expected(tensors: &[(String, PthTensor)], expected_key: impl Fn(&str) -> &str) {
    assert_matches_file(tensors, "expected.safetensors", expected_key);
}

fn assert_matches_file(
    tensors: &[(String, PthTensor)],
    expected_file: &str,
    expected_key: impl Fn(&str) -> &str,
) {
    let bytes = read_fixture(expected_file);
    let expected = SafeTensors::deserialize(&bytes).expect("expected tensors parse");
    for (name, tensor) in tensors {
        let want = expected
            .tensor(expected_key(name))
            .unwrap_or_else(|_| panic!("{name} is not in {expected_file}"));
        assert_eq!(tensor.dtype, want.dtype(), "dtype of {name}");
        assert_eq!(tensor.shape, want.shape(), "shape of {name}");
        assert_eq!(tensor.data, want.data(), "bytes of {name}");
    }
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn mixed_matches_expected_byte_for_byte() {
    let tensors = read_pth(&fixture("mixed.pth")).expect("mixed.pth reads");
    let names: Vec<&str> = tensors.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, MIXED_KEYS);
    assert_matches_expected(&tensors, |name| name);
}

#[test]
fn protocol_4_checkpoint_matches_too() {
    let tensors = read_pth(&fixture("mixed_proto4.pth")).expect("mixed_proto4.pth reads");
    let names: Vec<&str> = tensors.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, MIXED_KEYS);
    assert_matches_expected(&tensors, |name| name);
}

#[test]
fn mixed_covers_every_supported_dtype_and_layout() {
    let tensors = read_pth(&fixture("mixed.pth")).expect("mixed.pth reads");
    let get = |key: &str| &tensors.iter().find(|(name, _)| name == key).expect(key).1;

    let mut dtypes: Vec<String> = tensors.iter().map(|(_, t)| t.dtype.to_string()).collect();
    dtypes.sort();
    dtypes.dedup();
    assert_eq!(
        dtypes,
        ["BF16", "BOOL", "F16", "F32", "F64", "I16", "I32", "I64", "I8", "U8"]
    );

    let batches = get("norm.num_batches_tracked");
    assert!(batches.shape.is_empty());
    assert_eq!(batches.data, 7i64.to_le_bytes());
    assert_eq!(get("empty").shape, [0, 3]);
    assert!(get("empty").data.is_empty());
    assert_eq!(
        get("expanded").data,
        f32_bytes(&[2.0, -3.0, 2.0, -3.0, 2.0, -3.0])
    );
    assert_eq!(get("mask").data, [1, 0, 1]);
    assert_eq!(get("proj.weight_t").shape, [5, 3]);
}

#[test]
fn bytes_and_path_readers_agree() {
    let from_path = read_pth(&fixture("mixed.pth")).expect("path read");
    let from_bytes = read_pth_bytes(&read_fixture("mixed.pth"), "mixed.pth").expect("bytes read");
    assert_eq!(from_path, from_bytes);
}

#[test]
fn nested_checkpoint_is_unwrapped_and_non_tensor_leaves_skipped() {
    let tensors = read_pth(&fixture("nested.pth")).expect("nested.pth reads");
    let names: Vec<&str> = tensors.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "block.conv.weight",
            "block.norm.weight",
            "block.proj.weight_t"
        ]
    );
    assert_matches_expected(&tensors, |name| {
        name.strip_prefix("block.").expect("block prefix")
    });
}

#[test]
fn deflated_entries_are_accepted() {
    let deflated = repack(
        &read_fixture("mixed.pth"),
        CompressionMethod::Deflated,
        |_, data| data.to_vec(),
    );
    let tensors = read_pth_bytes(&deflated, "deflated.pth").expect("deflated checkpoint reads");
    assert_eq!(
        tensors,
        read_pth(&fixture("mixed.pth")).expect("mixed.pth reads")
    );
}

#[test]
fn truncated_file_is_reported_as_truncated() {
    let err = read_pth(&fixture("truncated.pth")).unwrap_err();
    assert!(matches!(err, PthError::Truncated { .. }), "{err}");
    assert_names_file(&err, "truncated.pth");
}

#[test]
fn zip_without_pickle_is_not_a_checkpoint() {
    let err = read_pth(&fixture("not_torch.zip")).unwrap_err();
    assert!(matches!(err, PthError::NotTorchCheckpoint { .. }), "{err}");
    assert_names_file(&err, "not_torch.zip");
    assert!(err
        .to_string()
        .contains("is a zip but not a torch checkpoint"));
}

#[test]
fn code_execution_attempt_is_refused() {
    let err = read_pth(&fixture("code.pth")).unwrap_err();
    match &err {
        PthError::ForbiddenGlobal { global, .. } => assert_eq!(global, "os.system"),
        other => panic!("expected ForbiddenGlobal, got {other}"),
    }
    assert_names_file(&err, "code.pth");
    assert!(err.to_string().contains(
        "refusing to import os.system: only tensor state dicts and TorchScript modules are read"
    ));
}

#[test]
fn torchscript_module_reads_under_state_dict_names() {
    let tensors = read_pth(&fixture("script.pt")).expect("script.pt reads");
    // TorchScript also pickles tensor attributes that are neither parameters nor buffers;
    // they come along under their attribute names.
    let (extra, state): (Vec<_>, Vec<_>) = tensors
        .into_iter()
        .partition(|(name, _)| name.ends_with(".plain"));
    let extra: Vec<&str> = extra.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(extra, ["body.0.plain", "body.2.plain"]);

    let bytes = read_fixture("script_expected.safetensors");
    let expected = SafeTensors::deserialize(&bytes).expect("expected tensors parse");
    let mut want: Vec<String> = expected.names().into_iter().map(str::to_owned).collect();
    let mut got: Vec<String> = state.iter().map(|(name, _)| name.clone()).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert_matches_file(&state, "script_expected.safetensors", |name| name);
    let bf16 = state.iter().find(|(name, _)| name == "body.2.lin.weight");
    assert_eq!(bf16.expect("second leaf").1.dtype, Dtype::BF16);
}

#[test]
fn torchscript_object_containing_itself_is_refused() {
    // m = __torch__.M(); m.__setstate__({"a": m})
    let pickle = [
        proto(),
        global("__torch__", "M"),
        vec![b')', 0x81, b'q', 0, b'}'],
        unicode("a"),
        vec![b'h', 0, b's', b'b', b'.'],
    ]
    .concat();
    let err = read_pth_bytes(&checkpoint(&pickle, &[]), "cycle.pt").unwrap_err();
    assert!(matches!(err, PthError::Unsupported { .. }), "{err}");
}

#[test]
fn torchscript_classes_are_never_called() {
    let pickle = [
        proto(),
        global("__torch__.models", "Model"),
        vec![b')', b'R', b'.'],
    ]
    .concat();
    let err = read_pth_bytes(&checkpoint(&pickle, &[]), "call.pt").unwrap_err();
    assert!(matches!(err, PthError::Malformed { .. }), "{err}");
}

#[test]
fn torchscript_object_without_state_holds_no_tensors() {
    let pickle = [proto(), global("__torch__", "M"), vec![b')', 0x81, b'.']].concat();
    let err = read_pth_bytes(&checkpoint(&pickle, &[]), "bare.pt").unwrap_err();
    assert!(matches!(err, PthError::Unsupported { .. }), "{err}");
}

#[test]
fn legacy_format_asks_for_a_resave() {
    let err = read_pth(&fixture("legacy.pth")).unwrap_err();
    assert!(matches!(err, PthError::LegacyFormat { .. }), "{err}");
    assert_names_file(&err, "legacy.pth");
    assert!(err.to_string().contains("re-save with torch>=1.6"));
}

#[test]
fn missing_file_is_an_io_error() {
    let err = read_pth(&fixture("does_not_exist.pth")).unwrap_err();
    assert!(matches!(err, PthError::Io { .. }), "{err}");
    assert_names_file(&err, "does_not_exist.pth");
}

#[test]
fn empty_and_non_zip_files_are_not_zips() {
    let empty = tempfile::NamedTempFile::new().expect("temp file");
    let err = read_pth(empty.path()).unwrap_err();
    assert!(matches!(err, PthError::NotZip { .. }), "{err}");

    let err = read_pth_bytes(b"hello, I am plain text", "notes.txt").unwrap_err();
    assert!(matches!(err, PthError::NotZip { .. }), "{err}");
    assert_names_file(&err, "notes.txt");
}

#[test]
fn big_endian_checkpoints_are_rejected() {
    let big = repack(
        &read_fixture("mixed.pth"),
        CompressionMethod::Stored,
        |name, data| {
            if name.ends_with("/byteorder") {
                b"big".to_vec()
            } else {
                data.to_vec()
            }
        },
    );
    let err = read_pth_bytes(&big, "big.pth").unwrap_err();
    assert!(matches!(err, PthError::BigEndian { .. }), "{err}");
    assert_names_file(&err, "big.pth");
}

// Hand-built pickles: each exercises one hostile or broken construct, in memory.

#[test]
fn hand_built_tensors_honour_offset_and_strides() {
    let storage = f32_bytes(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let read = |offset, size: &[i64], stride: &[i64]| {
        let pickle = tensor_dict("FloatStorage", 7, offset, size, stride);
        let bytes = checkpoint(&pickle, &[("0", &storage)]);
        let mut tensors = read_pth_bytes(&bytes, "mem.pth").expect("valid checkpoint");
        assert_eq!(tensors.len(), 1);
        tensors.remove(0).1
    };

    let dense = read(1, &[2, 3], &[3, 1]);
    assert_eq!(dense.dtype, Dtype::F32);
    assert_eq!(dense.shape, [2, 3]);
    assert_eq!(dense.data, f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));

    let transposed = read(1, &[3, 2], &[1, 3]);
    assert_eq!(transposed.data, f32_bytes(&[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]));

    let strided = read(0, &[4], &[2]);
    assert_eq!(strided.data, f32_bytes(&[0.0, 2.0, 4.0, 6.0]));

    let scalar = read(6, &[], &[]);
    assert_eq!(scalar.data, f32_bytes(&[6.0]));
}

#[test]
fn forbidden_globals_are_refused_by_name() {
    let eval = [
        proto(),
        global("builtins", "eval"),
        unicode("1+1"),
        vec![0x85, b'R', b'.'],
    ]
    .concat();
    let stack_global = [
        proto(),
        unicode("posix"),
        unicode("system"),
        vec![0x93, b'.'],
    ]
    .concat();
    let getattr = [proto(), global("__builtin__", "getattr"), vec![b'.']].concat();
    let torch_load = [proto(), global("torch", "load"), vec![b'.']].concat();
    // Only `__torch__` and its submodules name TorchScript classes.
    let lookalike = [proto(), global("__torch__evil", "M"), vec![b'.']].concat();
    let jit_helper = [proto(), global("torch.jit._pickle", "load"), vec![b'.']].concat();

    for (pickle, name) in [
        (eval, "builtins.eval"),
        (stack_global, "posix.system"),
        (getattr, "__builtin__.getattr"),
        (torch_load, "torch.load"),
        (lookalike, "__torch__evil.M"),
        (jit_helper, "torch.jit._pickle.load"),
    ] {
        let err = read_pth_bytes(&checkpoint(&pickle, &[]), "evil.pth").unwrap_err();
        match &err {
            PthError::ForbiddenGlobal { global, .. } => assert_eq!(global, name),
            other => panic!("expected ForbiddenGlobal for {name}, got {other}"),
        }
        assert_names_file(&err, "evil.pth");
    }
}

#[test]
fn hostile_names_are_escaped_in_messages() {
    let pickle = [proto(), global("os\x1b[2J", "system"), vec![b'.']].concat();
    let err = read_pth_bytes(&checkpoint(&pickle, &[]), "evil.pth").unwrap_err();
    let message = err.to_string();
    assert!(!message.contains('\x1b'), "{message:?}");
    assert!(message.contains("os\\u{1b}[2J.system"), "{message:?}");
}

#[test]
fn unhandled_storage_types_are_unsupported_not_forbidden() {
    let pickle = tensor_dict("ComplexFloatStorage", 1, 0, &[1], &[1]);
    let err = read_pth_bytes(&checkpoint(&pickle, &[("0", &[0; 8])]), "c.pth").unwrap_err();
    assert!(matches!(err, PthError::Unsupported { .. }), "{err}");
}

#[test]
fn unknown_opcode_is_named() {
    for (code, shown) in [(b'I', "0x49 ('I')"), (0xff, "0xff")] {
        let pickle = [proto(), vec![b'}', code, b'.']].concat();
        let err = read_pth_bytes(&checkpoint(&pickle, &[]), "odd.pth").unwrap_err();
        match &err {
            PthError::UnknownOpcode { opcode, offset, .. } => {
                assert_eq!(opcode, shown);
                assert_eq!(*offset, 3);
            }
            other => panic!("expected UnknownOpcode, got {other}"),
        }
        assert_names_file(&err, "odd.pth");
    }
}

#[test]
fn overflowing_shape_is_rejected_without_panic() {
    let huge = 1i64 << 40;
    let pickle = tensor_dict("FloatStorage", 1, 0, &[huge, huge, huge], &[0, 0, 0]);
    let err = read_pth_bytes(&checkpoint(&pickle, &[("0", &[0; 4])]), "huge.pth").unwrap_err();
    assert!(matches!(err, PthError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("overflows"), "{err}");
}

#[test]
fn giant_expanded_view_is_refused_before_allocating() {
    // One stored float expanded to 2^40 elements: 4 TiB if materialized.
    let side = 1i64 << 20;
    let pickle = tensor_dict("FloatStorage", 1, 0, &[side, side], &[0, 0]);
    let err = read_pth_bytes(&checkpoint(&pickle, &[("0", &[0; 4])]), "wide.pth").unwrap_err();
    assert!(matches!(err, PthError::TooLarge { .. }), "{err}");
}

#[test]
fn view_past_its_storage_is_malformed() {
    let pickle = tensor_dict("FloatStorage", 6, 0, &[4], &[2]);
    let err = read_pth_bytes(&checkpoint(&pickle, &[("0", &[0; 24])]), "view.pth").unwrap_err();
    assert!(matches!(err, PthError::Malformed { .. }), "{err}");
}

#[test]
fn storage_shorter_than_declared_is_truncated() {
    let pickle = tensor_dict("FloatStorage", 6, 0, &[6], &[1]);
    let err = read_pth_bytes(&checkpoint(&pickle, &[("0", &[0; 8])]), "short.pth").unwrap_err();
    assert!(matches!(err, PthError::Truncated { .. }), "{err}");
    assert!(err.to_string().contains("storage 0"), "{err}");
}

#[test]
fn missing_storage_entry_is_malformed() {
    let pickle = tensor_dict("FloatStorage", 1, 0, &[1], &[1]);
    let err = read_pth_bytes(&checkpoint(&pickle, &[]), "nodata.pth").unwrap_err();
    assert!(matches!(err, PthError::Malformed { .. }), "{err}");
}

#[test]
fn memo_index_out_of_range_is_malformed() {
    for get in [vec![b'h', 5], vec![b'j', 0xff, 0xff, 0xff, 0xff]] {
        let pickle = [proto(), get, vec![b'.']].concat();
        let err = read_pth_bytes(&checkpoint(&pickle, &[]), "memo.pth").unwrap_err();
        assert!(matches!(err, PthError::Malformed { .. }), "{err}");
        assert!(err.to_string().contains("memo index"), "{err}");
    }
}

#[test]
fn sparse_memo_indices_do_not_allocate_tables() {
    // Memo slots near u32::MAX must not size anything by the index.
    let pickle = [
        proto(),
        vec![
            b'}', b'r', 0xfe, 0xff, 0xff, 0xff, b'j', 0xfe, 0xff, 0xff, 0xff, b'.',
        ],
    ]
    .concat();
    let tensors = read_pth_bytes(&checkpoint(&pickle, &[]), "memo.pth").expect("empty dict");
    assert!(tensors.is_empty());
}

#[test]
fn pickle_ending_early_is_truncated() {
    let no_stop = [proto(), vec![b'}']].concat();
    let long_string = [proto(), vec![b'X', 0xff, 0xff, 0xff, 0xff, b'a']].concat();
    let endless_global = [proto(), b"ccollections\nOrdered".to_vec()].concat();
    for pickle in [no_stop, long_string, endless_global] {
        let err = read_pth_bytes(&checkpoint(&pickle, &[]), "cut.pth").unwrap_err();
        assert!(matches!(err, PthError::Truncated { .. }), "{err}");
    }
}

#[test]
fn stack_misuse_is_malformed() {
    let underflow = [proto(), vec![b's', b'.']].concat();
    // MARK fences the stack: SETITEM may not reach the dict below it.
    let across_mark = [proto(), vec![b'}', b'(', b'K', 1, b'K', 2, b's', b'.']].concat();
    let setitem_on_list = [proto(), vec![b']', b'K', 1, b'K', 2, b's', b'.']].concat();
    for pickle in [underflow, across_mark, setitem_on_list] {
        let err = read_pth_bytes(&checkpoint(&pickle, &[]), "stack.pth").unwrap_err();
        assert!(matches!(err, PthError::Malformed { .. }), "{err}");
    }
}

#[test]
fn top_level_must_be_a_dict() {
    let pickle = [proto(), vec![b']', b'.']].concat();
    let err = read_pth_bytes(&checkpoint(&pickle, &[]), "list.pth").unwrap_err();
    assert!(matches!(err, PthError::Unsupported { .. }), "{err}");
}

#[test]
fn self_containing_dict_does_not_recurse_forever() {
    // d = {}; d["a"] = d
    let pickle = [
        proto(),
        vec![b'}', b'q', 0],
        unicode("a"),
        vec![b'h', 0, b's', b'.'],
    ]
    .concat();
    let err = read_pth_bytes(&checkpoint(&pickle, &[]), "cycle.pth").unwrap_err();
    assert!(matches!(err, PthError::Unsupported { .. }), "{err}");
}

#[test]
fn exponentially_shared_dicts_hit_the_name_allowance() {
    // d0 = {"t": tensor}; d(i+1) = {"a": d(i), "b": d(i)}: 2^40 paths to one tensor.
    let mut pickle = tensor_dict("FloatStorage", 1, 0, &[1], &[1]);
    pickle.pop(); // STOP
    pickle.extend([b'q', 0]);
    for level in 1..=40u8 {
        pickle.extend([b'}', b'(']);
        pickle.extend(unicode("a"));
        pickle.extend([b'h', level - 1]);
        pickle.extend(unicode("b"));
        pickle.extend([b'h', level - 1, b'u', b'q', level]);
    }
    pickle.push(b'.');
    let err = read_pth_bytes(&checkpoint(&pickle, &[("0", &[0; 4])]), "fan.pth").unwrap_err();
    assert!(matches!(err, PthError::Unsupported { .. }), "{err}");
}

#[test]
fn rarely_used_opcodes_parse_and_non_tensor_leaves_are_skipped() {
    let mut pickle = tensor_dict("FloatStorage", 1, 0, &[], &[]);
    pickle.truncate(pickle.len() - 1); // STOP; the dict stays on the stack
    let binunicode8 = |text: &str| {
        let len = u64::try_from(text.len()).expect("short text");
        [
            vec![0x8d],
            len.to_le_bytes().to_vec(),
            text.as_bytes().to_vec(),
        ]
        .concat()
    };
    pickle.extend(
        [
            vec![b'('],
            binunicode8("none"),
            vec![b'N'],
            binunicode8("float"),
            vec![b'G'],
            1.5f64.to_be_bytes().to_vec(),
            binunicode8("big"),
            vec![0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            binunicode8("negative"),
            vec![0x8a, 1, 0xff],
            binunicode8("small"),
            vec![b'M', 0x34, 0x12],
            binunicode8("list"),
            vec![b']', b'K', 1, b'a', b'(', b'K', 2, 0x88, b'e'],
            binunicode8("triple"),
            vec![b'K', 1, b'K', 2, b'K', 3, 0x87],
            vec![b'u', b'.'],
        ]
        .concat(),
    );
    let tensors = read_pth_bytes(&checkpoint(&pickle, &[("0", &[0; 4])]), "leaves.pth")
        .expect("valid checkpoint");
    let names: Vec<&str> = tensors.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["t"]);
}

#[test]
fn corrupted_pickles_never_panic() {
    for (fixture_name, pickle_name) in [
        ("mixed.pth", "mixed/data.pkl"),
        ("script.pt", "script/data.pkl"),
    ] {
        let mut file = read_fixture(fixture_name);
        let pickle = entries(&file)
            .into_iter()
            .find(|(name, _)| name == pickle_name)
            .expect("data.pkl")
            .1;
        // The entry is stored, so its bytes can be corrupted in place; the reader does not
        // verify CRCs of stored entries it borrows.
        let start = file
            .windows(pickle.len())
            .position(|window| window == pickle)
            .expect("pickle bytes inside the zip");
        for (at, &original) in pickle.iter().enumerate() {
            for replacement in [0x00, 0xff, original ^ 0x80, b'(', b'h', b'b'] {
                file[start + at] = replacement;
                let _ = read_pth_bytes(&file, "fuzz.pth");
            }
            file[start + at] = original;
        }
    }
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let original = read_fixture("mixed.pth");
    for len in 0..original.len() {
        assert!(read_pth_bytes(&original[..len], "cut.pth").is_err());
    }
}

// Builders for hand-made checkpoints.

fn proto() -> Vec<u8> {
    vec![0x80, 2]
}

fn global(module: &str, name: &str) -> Vec<u8> {
    format!("c{module}\n{name}\n").into_bytes()
}

fn unicode(text: &str) -> Vec<u8> {
    let len = u32::try_from(text.len()).expect("short text");
    [
        vec![b'X'],
        len.to_le_bytes().to_vec(),
        text.as_bytes().to_vec(),
    ]
    .concat()
}

fn int(value: i64) -> Vec<u8> {
    match i32::try_from(value) {
        Ok(small) => [vec![b'J'], small.to_le_bytes().to_vec()].concat(),
        Err(_) => [vec![0x8a, 8], value.to_le_bytes().to_vec()].concat(),
    }
}

/// `{"t": _rebuild_tensor_v2(<storage "0">, offset, size, stride, False, OrderedDict())}`
fn tensor_dict(
    storage_class: &str,
    numel: i64,
    offset: i64,
    size: &[i64],
    stride: &[i64],
) -> Vec<u8> {
    let ints = |values: &[i64]| -> Vec<u8> {
        let mut out = vec![b'('];
        out.extend(values.iter().flat_map(|&v| int(v)));
        out.push(b't');
        out
    };
    [
        proto(),
        vec![b'}'],
        unicode("t"),
        global("torch._utils", "_rebuild_tensor_v2"),
        vec![b'(', b'('],
        unicode("storage"),
        global("torch", storage_class),
        unicode("0"),
        unicode("cpu"),
        int(numel),
        vec![b't', b'Q'],
        int(offset),
        ints(size),
        ints(stride),
        vec![0x89],
        global("collections", "OrderedDict"),
        vec![b')', b'R', b't', b'R', b's', b'.'],
    ]
    .concat()
}

/// A torch-layout zip holding `pickle` and the given storages, stored uncompressed.
fn checkpoint(pickle: &[u8], storages: &[(&str, &[u8])]) -> Vec<u8> {
    let mut entries = vec![
        ("mem/data.pkl".to_owned(), pickle.to_vec()),
        ("mem/byteorder".to_owned(), b"little".to_vec()),
    ];
    for (key, data) in storages {
        entries.push((format!("mem/data/{key}"), data.to_vec()));
    }
    write_zip(&entries, CompressionMethod::Stored)
}

fn write_zip(entries: &[(String, Vec<u8>)], method: CompressionMethod) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(method);
    for (name, data) in entries {
        zip.start_file(name, options).expect("zip entry");
        zip.write_all(data).expect("zip write");
    }
    zip.finish().expect("zip finish").into_inner()
}

/// Every `(name, bytes)` entry of a zip, in order.
fn entries(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = ZipArchive::new(Cursor::new(archive)).expect("zip");
    (0..zip.len())
        .map(|index| {
            let mut file = zip.by_index(index).expect("entry");
            let name = file.name().expect("entry name").to_string();
            let mut data = Vec::new();
            file.read_to_end(&mut data).expect("read");
            (name, data)
        })
        .collect()
}

/// Rewrites every entry of `archive` through `edit`, with the given compression.
fn repack(
    archive: &[u8],
    method: CompressionMethod,
    edit: impl Fn(&str, &[u8]) -> Vec<u8>,
) -> Vec<u8> {
    let edited: Vec<_> = entries(archive)
        .into_iter()
        .map(|(name, data)| {
            let data = edit(&name, &data);
            (name, data)
        })
        .collect();
    write_zip(&edited, method)
}
