//! Feeds the same bytes whole and as growing prefixes: the outcome must not depend on
//! where the input was split (chunking invariance).
//! Run: `cargo fuzz run parse_head_split -- -max_total_time=600`
#![no_main]
use libfuzzer_sys::fuzz_target;
use ssehub::http::head::{parse_head, HeadLimits, Status, EMPTY_HEADER};

fn outcome(buf: &[u8]) -> Option<Result<usize, ssehub::http::ParseError>> {
    let mut headers = [EMPTY_HEADER; 32];
    match parse_head(buf, &mut headers, HeadLimits::default()) {
        Ok(Status::Complete(h)) => Some(Ok(h.len)),
        Ok(Status::Partial) => None,
        Err(e) => Some(Err(e)),
    }
}

fuzz_target!(|input: (u16, &[u8])| {
    let (cut, data) = input;
    let whole = outcome(data);
    let cut = usize::from(cut) % (data.len() + 1);
    // A prefix is either still partial or already decided the same way.
    if let Some(early) = outcome(&data[..cut]) {
        match (&early, &whole) {
            (Ok(a), Some(Ok(b))) => assert_eq!(a, b),
            (Err(_), Some(Err(_))) => {}
            _ => panic!("prefix decided {early:?}, whole gave {whole:?}"),
        }
    }
});
