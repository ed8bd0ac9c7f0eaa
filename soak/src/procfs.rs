//! Resource samples of a process from Linux `/proc`: resident memory, CPU time, open
//! file descriptors.
//!
//! CPU time is `utime + stime` from `/proc/PID/stat`, in clock ticks, converted at
//! **100 ticks per second** (`USER_HZ`, which is 100 on every mainstream Linux
//! architecture; the tool has no `sysconf` without `libc`).

use std::io;

use serde::Serialize;

/// Clock ticks per second assumed for `/proc/PID/stat` times.
pub const TICKS_PER_SEC: f64 = 100.0;

/// One sample of a process.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Resident set size (`VmRSS`). **Unit:** KiB.
    pub rss_kib: u64,
    /// User plus system CPU time. **Unit:** seconds.
    pub cpu_secs: f64,
    /// Open file descriptors (entries of `/proc/PID/fd`).
    pub fds: u64,
}

/// `VmRSS` from the text of `/proc/PID/status`, in KiB.
pub fn rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// `utime + stime` in seconds from the text of `/proc/PID/stat`. The command name (field
/// 2) may contain spaces and parentheses, so fields are counted after the last `)`.
pub fn cpu_secs(stat: &str) -> Option<f64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // After ")": field 3 (state) is index 0, so utime (14) is index 11, stime (15) 12.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SEC)
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Samples process `pid` (`"self"` for this process).
pub fn sample(pid: &str) -> io::Result<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64;
    Ok(Sample {
        rss_kib: rss_kib(&status).ok_or_else(|| bad("no VmRSS in status"))?,
        cpu_secs: cpu_secs(&stat).ok_or_else(|| bad("cannot parse stat"))?,
        fds,
    })
}

/// CPU seconds used by this process so far.
pub fn own_cpu_secs() -> Option<f64> {
    cpu_secs(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// The soft limit on open files of this process, from `/proc/self/limits`.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Whether process `pid` is alive (it exists and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => state(&stat) != Some('Z'),
        Err(_) => false,
    }
}

/// The state letter of a `/proc/PID/stat` text (after the command's closing paren).
fn state(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The socket inodes listening on TCP `port` (IPv4 or IPv6), from the text of
/// `/proc/net/tcp` or `/proc/net/tcp6`.
pub fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    let want = format!("{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f.get(1)?.rsplit_once(':')?.1;
            (local_port == want && *f.get(3)? == "0A").then(|| f.get(9)?.parse().ok())?
        })
        .collect()
}

/// The processes (other than `except`) that hold a socket listening on TCP `port`: after
/// a handover, the server that serves it now. Processes whose descriptors cannot be read
/// (another user's) are skipped.
pub fn listener_pids(port: u16, except: u32) -> Vec<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(t) = std::fs::read_to_string(table) {
            inodes.extend(listening_inodes(&t, port));
        }
    }
    let names: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let mut found = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == except || !alive(pid) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|l| names.iter().any(|n| l.as_os_str() == n.as_str()))
        });
        if holds {
            found.push(pid);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_listening_sockets_and_states() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0 100 0 0 10 0\n\
   1: 0100007F:1F90 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0 100 0 0 10 0\n\
   2: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4444 1 0 100 0 0 10 0\n";
        assert_eq!(listening_inodes(table, 8080), [4242]);
        assert_eq!(state("42 (a) b) Z 1 2"), Some('Z'));
        assert_eq!(state("42 (x) S 1 2"), Some('S'));
        assert!(alive(std::process::id()));
    }

    #[test]
    fn parses_status_and_stat() {
        assert_eq!(
            rss_kib("Name:\tx\nVmRSS:\t  1234 kB\nVmSwap: 0 kB\n"),
            Some(1234)
        );
        assert_eq!(rss_kib("Name: x\n"), None);
        let stat = "42 (we) ird) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1 2 3";
        assert_eq!(cpu_secs(stat), Some(3.0));
    }

    #[test]
    fn samples_self() {
        let s = sample("self").unwrap();
        assert!(s.rss_kib > 0 && s.fds >= 3);
        assert!(own_cpu_secs().is_some());
        assert!(open_files_limit().unwrap_or(1) > 0);
    }
}
