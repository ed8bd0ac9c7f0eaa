//! `--processes P`: one command spreads the subscribers over P processes of this tool,
//! so that a machine can hold more connections than one process's descriptor limit.
//! This process keeps its share and starts the others with the same flags and theirs
//! (`--clients` split evenly, the remainder here); their JSON reports are collected at
//! the end and go into this one's.

use std::io;
use std::process::{Child, Command, Stdio};

/// The other processes of a `--processes` run.
#[derive(Debug, Default)]
pub(crate) struct Children {
    procs: Vec<Child>,
}

/// The arguments of one child: `args` without `--processes` and `--clients` (each with
/// its value, `--x V` or `--x=V`), then `--clients share`.
pub(crate) fn child_args(args: &[String], share: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len() + 2);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let dropped = ["--processes", "--clients"];
        if dropped.contains(&a.as_str()) {
            it.next();
            continue;
        }
        if dropped.iter().any(|d| a.starts_with(&format!("{d}="))) {
            continue;
        }
        out.push(a.clone());
    }
    out.extend(["--clients".to_string(), share.to_string()]);
    out
}

/// Each process's share of `clients` over `processes`: this one's (with the remainder)
/// and each child's.
pub(crate) fn shares(clients: usize, processes: usize) -> (usize, usize) {
    let each = clients / processes.max(1);
    (clients - each * (processes.max(1) - 1), each)
}

impl Children {
    /// Starts `count` children of this executable with `args`; their reports are piped
    /// back, their warnings go to this process's stderr.
    pub(crate) fn start(count: usize, args: &[String]) -> io::Result<Children> {
        let exe = std::env::current_exe()?;
        let mut procs = Vec::with_capacity(count);
        for _ in 0..count {
            let child = Command::new(&exe)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn();
            match child {
                Ok(c) => procs.push(c),
                Err(e) => {
                    Children { procs }.kill();
                    return Err(e);
                }
            }
        }
        Ok(Children { procs })
    }

    /// Waits for every child (each ends by itself at `--duration`) and returns its
    /// report, or a failure line for one that wrote none.
    pub(crate) fn collect(self) -> (Vec<serde_json::Value>, Vec<String>) {
        let mut reports = Vec::new();
        let mut failed = Vec::new();
        for (i, child) in self.procs.into_iter().enumerate() {
            let pid = child.id();
            match child.wait_with_output() {
                Ok(out) => match serde_json::from_slice::<serde_json::Value>(&out.stdout) {
                    Ok(report) => {
                        if report.get("ok") != Some(&serde_json::Value::Bool(true)) {
                            failed.push(format!("process {} (pid {pid}) failed", i + 1));
                        }
                        reports.push(report);
                    }
                    Err(e) => failed.push(format!(
                        "process {} (pid {pid}) wrote no report ({e}; {})",
                        i + 1,
                        out.status
                    )),
                },
                Err(e) => failed.push(format!("process {} (pid {pid}): {e}", i + 1)),
            }
        }
        (reports, failed)
    }

    /// Stops every child (on a failed start).
    fn kill(mut self) {
        for c in &mut self.procs {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_child_gets_the_flags_and_its_share() {
        let args = strings(&[
            "--url",
            "http://127.0.0.1:9",
            "--processes",
            "3",
            "--clients=10",
            "--idle",
        ]);
        assert_eq!(
            child_args(&args, 3),
            strings(&["--url", "http://127.0.0.1:9", "--idle", "--clients", "3"])
        );
    }

    #[test]
    fn the_remainder_stays_here() {
        assert_eq!(shares(10, 3), (4, 3));
        assert_eq!(shares(9, 3), (3, 3));
        assert_eq!(shares(5, 1).0, 5);
    }
}
