//! Drives the whole connection handler (parser, router, publish, stream writer, direct
//! writes) over an in-memory stream fed with fuzz bytes; whatever it answers is discarded.
//! Run: `cargo fuzz run serve_connection -- -max_total_time=600`
#![no_main]
use libfuzzer_sys::fuzz_target;
use ssehub::testing::{Harness, MemStream};
use ssehub::Config;

fuzz_target!(|data: &[u8]| {
    // A short request timeout: a held-open peer that sent half a body is answered 408 at once.
    let flags = ["--publish-token", "t", "--no-demo", "--request-timeout", "0.01"];
    let config = Config::from_args(flags, |_| None)
        .ok()
        .and_then(|c| match c {
            ssehub::config::Command::Run(c) => Some(*c),
            _ => None,
        })
        .expect("valid flags");
    let harness = Harness::new(config);
    // Odd first byte: the peer stays connected and the hub publishes to it (direct writes
    // reach it when its writer waits), then closes.
    let held = data.first().is_some_and(|b| b & 1 == 1);
    let mut stream = MemStream::new(data.to_vec());
    if held {
        stream = stream.held_open().with_direct_sink();
    }
    let driver = async {
        if held {
            for _ in 0..8 {
                futures_lite::future::yield_now().await;
            }
            let event = ssehub::Event::new("fuzz").expect("valid data");
            harness.hub().publish(&ssehub::Topic::default_topic(), &event);
            harness.shutdown();
        }
    };
    futures_lite::future::block_on(futures_lite::future::zip(harness.serve(stream), driver));
});
