//! Fuzzes the RESP2 reply parser: never a panic; a reply parsed from a prefix is parsed
//! the same from the whole input; whatever parses re-encodes to the bytes it came from.
//! Run: `cargo fuzz run resp -- -max_total_time=600`
#![no_main]
use libfuzzer_sys::fuzz_target;
use ssehub::redis::resp::{encode_value, parse, ReplyLimits};

fuzz_target!(|data: &[u8]| {
    let limits = ReplyLimits { max_bytes: 1 << 16, max_depth: 8 };
    if let Ok(Some((value, used))) = parse(data, limits) {
        assert!(used <= data.len());
        let mut again = Vec::new();
        encode_value(&mut again, &value);
        // Simple strings and errors are read lossily as UTF-8; only compare the rest.
        if std::str::from_utf8(&data[..used]).is_ok() {
            assert_eq!(&again[..], &data[..used]);
        }
        for cut in 0..used {
            assert!(matches!(parse(&data[..cut], limits), Ok(None)));
        }
    }
});
