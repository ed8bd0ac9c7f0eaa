//! Fuzzes the chunked body decoder, fed in fuzz-chosen pieces.
//! Run: `cargo fuzz run chunked -- -max_total_time=600`
#![no_main]
use libfuzzer_sys::fuzz_target;
use ssehub::http::chunked::ChunkedDecoder;

fuzz_target!(|input: (u8, &[u8])| {
    let (step, data) = input;
    let step = usize::from(step.max(1));
    let mut dec = ChunkedDecoder::new(1 << 16);
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    for piece in data.chunks(step) {
        buf.extend_from_slice(piece);
        match dec.decode(&buf, &mut out) {
            Ok((used, done)) => {
                assert!(used <= buf.len());
                buf.drain(..used);
                if done {
                    break;
                }
            }
            Err(_) => break,
        }
        assert!(out.len() <= 1 << 16);
    }
});
