//! The capacity plan's tools at the scale that fits here (#25): the soak tool spreads
//! its subscribers over several source addresses in 127.0.0.0/8 and several processes
//! from one command, as a machine driving a million would.

use std::process::Command;

use crate::support::{soak_binary, spawn_binary};

#[test]
fn the_soak_tool_spreads_subscribers_over_source_addresses_and_processes() {
    let server = spawn_binary(&["--no-demo", "--heartbeat", "0"]);
    let out = Command::new(soak_binary())
        .args(["--url", &format!("http://{}", server.addr), "--idle"])
        .args(["--clients", "31", "--bind-sources", "3", "--processes", "2"])
        .args(["--duration", "3", "--progress", "0", "--threads", "1"])
        .output()
        .expect("run ssehub-soak");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no report ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        out.status.success(),
        "{}\n{:#}",
        String::from_utf8_lossy(&out.stderr),
        report["failed_checks"]
    );
    // This process keeps the remainder; the other one's report is inside this one's.
    assert_eq!(
        report["clients"]["connected"], 16,
        "{:#}",
        report["clients"]
    );
    let others = report["processes"].as_array().expect("the other reports");
    assert_eq!(others.len(), 1);
    assert_eq!(others[0]["clients"]["connected"], 15);
    assert_eq!(others[0]["ok"], true);
    // The server saw every subscriber come from the three sources, none from 127.0.0.1.
    let lines = server.stderr.lock().unwrap().clone();
    let peers: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split(" connected from ").nth(1))
        .collect();
    assert_eq!(peers.len(), 31, "{lines:#?}");
    for source in ["127.1.0.1:", "127.1.0.2:", "127.1.0.3:"] {
        let n = peers.iter().filter(|p| p.starts_with(source)).count();
        assert!((10..=11).contains(&n), "{n} from {source}: {peers:?}");
    }
}
