//! Fuzzes the request-head parser and the framing rules on arbitrary bytes.
//! Run: `cargo fuzz run parse_head -- -max_total_time=600`
#![no_main]
use libfuzzer_sys::fuzz_target;
use ssehub::http::framing::framing;
use ssehub::http::head::{parse_head, HeadLimits, Status, EMPTY_HEADER};

fuzz_target!(|data: &[u8]| {
    let mut headers = [EMPTY_HEADER; 32];
    if let Ok(Status::Complete(head)) = parse_head(data, &mut headers, HeadLimits::default()) {
        assert!(head.len <= data.len());
        let _ = framing(&head, 1 << 16);
        let _ = ssehub::http::target::parse_target(head.target);
    }
});
