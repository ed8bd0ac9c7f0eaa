//! Restart mode (`--server-cmd`): the tool starts the server, restarts it mid-run on
//! the same port (`--restart-after`, `--restarts` times), and stops it at the end.
//!
//! With `--restart-signal usr2` a restart is ssehub's upgrade: `SIGUSR2` to the serving
//! pid, which hands its streams to a successor it starts and exits. The tool is a child
//! subreaper, so the successor (orphaned when its parent exits) becomes its child: it
//! finds it as the process that now holds the listening socket, and reaps it at the end.
//! No subscriber may reconnect then. With `usr2-fail` the successor fails at start
//! (ssehub's test hook `SSEHUB_HANDOVER_EXE=/bin/false`): the old server must serve on.
//!
//! While the server is down, and for every connection or request that began before the
//! restart, a failure is the restart's doing: subscribers reconnect (with
//! `Last-Event-ID`, so they must get exactly what they missed or a `reset` event first:
//! a silent gap stays a failure), the publisher retries. A publish whose answer the
//! restart cut off may have been published: its `seq` is published again, and a
//! subscriber seeing it twice is counted apart from other duplicates.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use serde::Serialize;

use crate::args::{ServerCmd, StopSignal};

/// Longest wait for the server to exit after a signal, or to answer after a start.
const SERVER_WAIT: Duration = Duration::from_secs(15);
/// How often the start-up wait tries to connect.
const POLL: Duration = Duration::from_millis(10);

/// What every task needs to know about restarts.
#[derive(Debug, Default)]
pub(crate) struct Restart {
    /// Restarts begun: the era a connection or request started in.
    era: AtomicU64,
    /// Whether the server is down now (from the signal until it answers again).
    down: AtomicBool,
    /// Publishes whose answer a restart cut off (they may have been published).
    ambiguous: Mutex<Vec<u64>>,
    /// Steady subscribers that reconnected after a restart.
    pub(crate) reconnected: AtomicU64,
    /// Churn and reconnect sessions a restart ended.
    pub(crate) sessions_ended: AtomicU64,
    /// Publish attempts that failed because of a restart.
    pub(crate) publish_errors: AtomicU64,
    /// Events seen twice because their publish was cut off and sent again.
    pub(crate) duplicates: AtomicU64,
    /// What the restarts and the final stop found.
    pub(crate) found: Mutex<Found>,
}

/// Restart mode's figures for the report.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct Found {
    /// Restarts done.
    pub(crate) restarts: u64,
    /// From the first start until the server answered a request. **Unit:** ms.
    pub(crate) startup_ms: Option<f64>,
    /// From the restart's signal until the new server answered a request. **Unit:** ms.
    pub(crate) downtime_ms: Option<f64>,
    /// Handovers (`usr2`): from each `SIGUSR2` until the old process exited. **Unit:**
    /// ms.
    pub(crate) handover_ms: Vec<f64>,
    /// Handovers that rolled back (`usr2-fail`): the old process still served.
    pub(crate) rollbacks: u64,
    /// How the stopped server ended (`exit 0`, `signal 9`).
    pub(crate) stopped_exit: Option<String>,
    /// How the server ended at the end of the run.
    pub(crate) final_exit: Option<String>,
    /// What went wrong starting or stopping it.
    pub(crate) errors: Vec<String>,
}

impl Restart {
    /// The era now: pass it to [`Restart::hit`] later.
    pub(crate) fn era(&self) -> u64 {
        self.era.load(Ordering::SeqCst)
    }

    /// Whether a restart began since `era` was taken, or the server is down now.
    pub(crate) fn hit(&self, era: u64) -> bool {
        self.down.load(Ordering::SeqCst) || self.era() != era
    }

    /// Whether the server is down now.
    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// A publish of `seq` whose answer a restart cut off.
    pub(crate) fn ambiguous(&self, seq: u64) {
        let mut a = self.ambiguous.lock().unwrap_or_else(|e| e.into_inner());
        if !a.contains(&seq) {
            a.push(seq);
        }
    }

    /// Whether `seq` was published again after a restart cut its answer off.
    pub(crate) fn is_ambiguous(&self, seq: u64) -> bool {
        self.ambiguous
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&seq)
    }

    fn note(&self, f: impl FnOnce(&mut Found)) {
        f(&mut self.found.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Notes a start-up or stop failure (a failed check).
    pub(crate) fn failed(&self, what: String) {
        eprintln!("ssehub-soak: {what}");
        self.note(|f| f.errors.push(what));
    }
}

/// The server process the tool runs.
#[derive(Debug)]
pub(crate) struct ServerProc {
    cfg: ServerCmd,
    addr: SocketAddr,
    child: Mutex<Option<Child>>,
    /// After a handover: the successor serving now (adopted, see the module docs).
    adopted: Mutex<Option<u32>>,
}

/// Longest wait for a handover's old process to exit. **Unit:** seconds.
const HANDOVER_WAIT: Duration = Duration::from_secs(20);
/// How long a failed handover is given to roll back before the old process must be
/// seen serving. **Unit:** ms.
const ROLLBACK_WAIT: Duration = Duration::from_millis(1000);

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => "unknown".into(),
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

impl ServerProc {
    /// Starts the server and waits until it answers on `addr`.
    pub(crate) fn start(cfg: &ServerCmd, addr: SocketAddr, restart: &Restart) -> ServerProc {
        let p = ServerProc {
            cfg: cfg.clone(),
            addr,
            child: Mutex::new(None),
            adopted: Mutex::new(None),
        };
        if cfg.restart_signal.is_upgrade()
            && let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        {
            restart.failed(format!("cannot become a child subreaper: {e}"));
        }
        let t0 = Instant::now();
        match p.spawn().and_then(|()| p.wait_answering(None)) {
            Ok(()) => restart.note(|f| f.startup_ms = Some(ms(t0.elapsed()))),
            Err(e) => restart.failed(format!("server start: {e}")),
        }
        p
    }

    fn spawn(&self) -> Result<(), String> {
        let out = match &self.cfg.log {
            Some(path) => OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("--server-log {path}: {e}"))?
                .into(),
            None => Stdio::null(),
        };
        let err = match &self.cfg.log {
            Some(path) => OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(|e| format!("--server-log {path}: {e}"))?
                .into(),
            None => Stdio::null(),
        };
        let mut cmd = Command::new("sh");
        if self.cfg.restart_signal == StopSignal::Usr2Fail {
            cmd.env("SSEHUB_HANDOVER_EXE", "/bin/false");
        }
        let child = cmd
            .arg("-c")
            .arg(format!("exec {}", self.cfg.cmd))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run sh -c 'exec {}': {e}", self.cfg.cmd))?;
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        Ok(())
    }

    /// Whether the server answers a request: a listening socket is not enough (the
    /// kernel completes handshakes before the server accepts, for example while it
    /// still reads its history file). Any HTTP answer will do.
    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let req = format!(
            "GET /health HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        let mut head = [0u8; 5];
        s.write_all(req.as_bytes()).is_ok() && s.read_exact(&mut head).is_ok() && &head == b"HTTP/"
    }

    /// Waits until the server answers (or has exited, or `SERVER_WAIT` passed).
    fn wait_answering(&self, stop: Option<&crate::signal::Signal>) -> Result<(), String> {
        let deadline = Instant::now() + SERVER_WAIT;
        loop {
            if self.answers() {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self
                .child
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_mut()
                .map(Child::try_wait)
            {
                return Err(format!("the server exited at start ({})", describe(status)));
            }
            if Instant::now() >= deadline || stop.is_some_and(|s| s.fired()) {
                return Err(format!(
                    "the server did not answer on {} within 15 s",
                    self.addr
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Signals the server and waits for its exit (a `SIGKILL` after `SERVER_WAIT`).
    fn stop(&self, signal: StopSignal) -> Result<ExitStatus, String> {
        if let Some(pid) = *self.adopted.lock().unwrap_or_else(|e| e.into_inner()) {
            return stop_adopted(pid, signal);
        }
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let Some(child) = guard.as_mut() else {
            return Err("no server running".into());
        };
        if let Ok(Some(status)) = child.try_wait() {
            guard.take();
            return Err(format!(
                "the server had already ended ({})",
                describe(status)
            ));
        }
        let sig = match signal {
            StopSignal::Kill => Signal::KILL,
            _ => Signal::TERM,
        };
        let pid = Pid::from_raw(child.id() as i32).ok_or("no server pid")?;
        kill_process(pid, sig).map_err(|e| format!("cannot signal the server: {e}"))?;
        let deadline = Instant::now() + SERVER_WAIT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    guard.take();
                    return Ok(status);
                }
                Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    guard.take();
                    return Err("the server did not exit within 15 s: killed".into());
                }
            }
        }
    }

    /// The pid serving now.
    fn serving_pid(&self) -> Option<u32> {
        let adopted = *self.adopted.lock().unwrap_or_else(|e| e.into_inner());
        adopted.or_else(|| {
            let child = self.child.lock().unwrap_or_else(|e| e.into_inner());
            child.as_ref().map(Child::id)
        })
    }

    /// Whether `pid` has exited (reaping it: our child, or adopted).
    fn exited(&self, pid: u32) -> Option<ExitStatus> {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = child.as_mut().filter(|c| c.id() == pid) {
            let done = c.try_wait().ok().flatten();
            if done.is_some() {
                child.take();
            }
            return done;
        }
        reap(pid)
    }

    /// A handover (`usr2`, `usr2-fail`): `SIGUSR2` to the serving pid; then either its
    /// exit and the successor found, or (`usr2-fail`) the old process still serving.
    fn upgrade(&self, restart: &Restart) -> Result<(), String> {
        let pid = self.serving_pid().ok_or("no server running")?;
        let raw = Pid::from_raw(pid as i32).ok_or("no server pid")?;
        let t0 = Instant::now();
        kill_process(raw, Signal::USR2).map_err(|e| format!("cannot signal the server: {e}"))?;
        if self.cfg.restart_signal == StopSignal::Usr2Fail {
            std::thread::sleep(ROLLBACK_WAIT);
            if let Some(status) = self.exited(pid) {
                return Err(format!("the old server exited ({})", describe(status)));
            }
            restart.note(|f| f.rollbacks += 1);
            return Ok(());
        }
        loop {
            if let Some(status) = self.exited(pid) {
                restart.note(|f| f.handover_ms.push(ms(t0.elapsed())));
                if !status.success() {
                    return Err(format!("the old server exited {}", describe(status)));
                }
                break;
            }
            if t0.elapsed() > HANDOVER_WAIT {
                return Err("the old server did not exit within 20 s of SIGUSR2".into());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let successor = crate::procfs::listener_pids(self.addr.port(), pid);
        match successor.as_slice() {
            [one] => {
                *self.adopted.lock().unwrap_or_else(|e| e.into_inner()) = Some(*one);
                Ok(())
            }
            [] => Err("no process listens on the port after the handover".into()),
            many => Err(format!("several processes listen on the port: {many:?}")),
        }
    }

    /// Restarts the server: signal, wait for the exit, start, wait until it answers.
    /// Subscribers and the publisher see [`Restart::hit`] from the signal on.
    pub(crate) fn restart(&self, restart: &Restart, stop: &crate::signal::Signal) {
        restart.down.store(true, Ordering::SeqCst);
        restart.era.fetch_add(1, Ordering::SeqCst);
        let t0 = Instant::now();
        let signal = self.cfg.restart_signal;
        if signal.is_upgrade() {
            match self
                .upgrade(restart)
                .and_then(|()| self.wait_answering(Some(stop)))
            {
                Ok(()) => restart.note(|f| {
                    f.restarts += 1;
                    f.downtime_ms = Some(ms(t0.elapsed()));
                }),
                Err(e) => restart.failed(format!("upgrade: {e}")),
            }
            restart.down.store(false, Ordering::SeqCst);
            return;
        }
        match self.stop(signal) {
            Ok(status) => {
                if signal == StopSignal::Term && !status.success() {
                    restart.failed(format!("restart: the server exited {}", describe(status)));
                }
                restart.note(|f| f.stopped_exit = Some(describe(status)));
            }
            Err(e) => restart.failed(format!("restart: {e}")),
        }
        match self.spawn().and_then(|()| self.wait_answering(Some(stop))) {
            Ok(()) => {
                restart.note(|f| {
                    f.restarts += 1;
                    f.downtime_ms = Some(ms(t0.elapsed()));
                });
                restart.down.store(false, Ordering::SeqCst);
            }
            Err(e) => restart.failed(format!("restart: {e}")),
        }
    }

    /// Stops the server at the end of the run (`SIGTERM`; it must exit 0).
    pub(crate) fn finish(&self, restart: &Restart) {
        match self.stop(StopSignal::Term) {
            Ok(status) => {
                if !status.success() {
                    restart.failed(format!("at the end the server exited {}", describe(status)));
                }
                restart.note(|f| f.final_exit = Some(describe(status)));
            }
            Err(e) => restart.failed(format!("at the end: {e}")),
        }
    }
}

/// Reaps `pid` (an adopted successor) if it has exited.
fn reap(pid: u32) -> Option<ExitStatus> {
    let raw = Pid::from_raw(pid as i32)?;
    match rustix::process::waitpid(Some(raw), rustix::process::WaitOptions::NOHANG) {
        Ok(Some((_, status))) => Some(ExitStatus::from_raw(status.as_raw())),
        Ok(None) => None,
        // Not our child (no subreaper): gone once /proc says so; its status is unknown.
        Err(_) => (!crate::procfs::alive(pid)).then(|| ExitStatus::from_raw(0)),
    }
}

/// Signals an adopted server and waits for its exit (a `SIGKILL` after `SERVER_WAIT`).
fn stop_adopted(pid: u32, signal: StopSignal) -> Result<ExitStatus, String> {
    let raw = Pid::from_raw(pid as i32).ok_or("no server pid")?;
    let sig = match signal {
        StopSignal::Kill => Signal::KILL,
        _ => Signal::TERM,
    };
    kill_process(raw, sig).map_err(|e| format!("cannot signal the server: {e}"))?;
    let deadline = Instant::now() + SERVER_WAIT;
    loop {
        if let Some(status) = reap(pid) {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = kill_process(raw, Signal::KILL);
            let _ = reap(pid);
            return Err("the server did not exit within 15 s: killed".into());
        }
        std::thread::sleep(POLL);
    }
}

impl Drop for ServerProc {
    /// Never leave a server behind (the run overran, or panicked).
    fn drop(&mut self) {
        if let Some(pid) = self
            .adopted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            && let Some(raw) = Pid::from_raw(pid as i32)
            && reap(pid).is_none()
        {
            let _ = kill_process(raw, Signal::KILL);
            std::thread::sleep(POLL);
            let _ = reap(pid);
        }
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_marks_what_began_before_it() {
        let r = Restart::default();
        let before = r.era();
        assert!(!r.hit(before));
        r.down.store(true, Ordering::SeqCst);
        r.era.fetch_add(1, Ordering::SeqCst);
        assert!(r.hit(before) && r.hit(r.era()));
        r.down.store(false, Ordering::SeqCst);
        // Begun before the restart: its failure is the restart's; begun after: not.
        assert!(r.hit(before) && !r.hit(r.era()));
        r.ambiguous(7);
        r.ambiguous(7);
        assert!(r.is_ambiguous(7) && !r.is_ambiguous(8));
    }

    #[test]
    fn exits_are_described() {
        assert_eq!(describe(ExitStatus::from_raw(0)), "exit 0");
        assert_eq!(describe(ExitStatus::from_raw(3 << 8)), "exit 3");
        assert_eq!(describe(ExitStatus::from_raw(9)), "signal 9");
    }
}
