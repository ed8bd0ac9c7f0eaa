//! Drives the whole connection handler (parser, router, publish, stream writer) over an
//! in-memory stream fed with fuzz bytes; whatever it answers is discarded.
//! Run: `cargo fuzz run serve_connection -- -max_total_time=600`
#![no_main]
use libfuzzer_sys::fuzz_target;
use ssehub::server::{serve_connection, Ctx};
use ssehub::testing::MemStream;
use ssehub::{Config, Log, Shutdown};

fuzz_target!(|data: &[u8]| {
    let config = Config::from_args(["--publish-token", "t", "--no-demo"], |_| None)
        .ok()
        .and_then(|c| match c {
            ssehub::config::Command::Run(c) => Some(*c),
            _ => None,
        })
        .expect("valid flags");
    let ctx = Ctx::new(config, Log::silent(), Shutdown::new());
    let stream = MemStream::new(data.to_vec());
    futures_lite::future::block_on(serve_connection(stream, "127.0.0.1:1".parse().unwrap(), &ctx));
});
