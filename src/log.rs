//! Where the server's one-line log messages go.
//!
//! Library code never prints. The server reports starts, connects, disconnects and
//! evictions to a [`Log`]; the binary installs a stderr sink, a library user may install
//! their own or keep the default, which discards everything.

use std::fmt;
use std::sync::Arc;

/// A cloneable log sink: a function that receives one formatted line at a time.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// let lines = Arc::new(Mutex::new(Vec::new()));
/// let sink = lines.clone();
/// let log = ssehub::Log::new(move |line| sink.lock().unwrap().push(line.to_string()));
/// log.line(format_args!("connected {}", 1));
/// assert_eq!(lines.lock().unwrap()[0], "connected 1");
/// ```
#[derive(Clone, Default)]
pub struct Log(Option<Arc<Sink>>);

/// The function behind a [`Log`].
type Sink = dyn Fn(&fmt::Arguments<'_>) + Send + Sync;

impl Log {
    /// A sink that calls `f` for every line.
    pub fn new(f: impl Fn(&fmt::Arguments<'_>) + Send + Sync + 'static) -> Log {
        Log(Some(Arc::new(f)))
    }

    /// A sink that discards everything (the default).
    pub fn silent() -> Log {
        Log(None)
    }

    /// A sink that writes each line to standard error, prefixed with `ssehub: `, in one
    /// `write(2)`: a handover's two processes share the descriptor, and standard error
    /// is unbuffered, so a line formatted straight into it went out in pieces that the
    /// other process's lines could split (one test in eight saw the old process's
    /// "handed over" line cut by the successor's).
    pub fn stderr() -> Log {
        Log::new(|args| {
            use std::io::Write;
            let line = format!("ssehub: {args}\n");
            // A closed stderr must not take the server down: ignore write errors.
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        })
    }

    /// Emits one line.
    pub fn line(&self, args: fmt::Arguments<'_>) {
        if let Some(f) = &self.0 {
            f(&args);
        }
    }
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Log(on)"
        } else {
            "Log(off)"
        })
    }
}
