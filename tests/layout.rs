//! The shape of the code: dependencies between a crate's modules point one way (in the
//! library and in the soak tool, `soak/`), and no source file grows past what one can
//! hold in one's head.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crate's top-level modules, from the leaves up. A module may use only modules
/// listed before it (and `testing`, on top, anything).
const LAYERS: &[&str] = &[
    "event_id", "log", "daemon", "shutdown", "stats", "mercure", "topic", "envelope", "auth",
    "sse", "http", "redis", "page", "input", "hub", "port", "config", "producer", "server",
    "testing",
];

/// The soak tool's modules (`soak/src/`), from the leaves up, by the same rule. The
/// run's shared context (`runtime`, its `Rt`) sits above the parts it holds
/// (`cluster`, `server`, `dial`), which never name it.
const SOAK_LAYERS: &[&str] = &[
    "http",
    "sse",
    "check",
    "histogram",
    "order",
    "procfs",
    "signal",
    "args",
    "spread",
    "doctor",
    "counters",
    "dial",
    "server",
    "cluster",
    "runtime",
    "session",
    "clients",
    "publisher",
    "run",
    "report",
];

/// Most lines in one source file, tests included.
const MAX_LINES: usize = 800;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/hub/mod.rs` → `hub`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_owned())
}

/// Every `crate::NAME` a file mentions (in `use` lines and paths alike), comments aside.
fn uses(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
            rest = after;
        }
    }
    out
}

/// What is wrong with the modules under `src` against `layers` (empty: nothing): a
/// module not listed, or one that uses a module not below it (`top` may use any).
fn layering_faults(src: &Path, layers: &[&str], top: Option<&str>) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(src, file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read file");
        let deps = graph.entry(module.clone()).or_default();
        for used in uses(&text) {
            if used != module && layers.contains(&used.as_str()) {
                deps.insert(used);
            }
        }
    }
    let rank = |m: &str| layers.iter().position(|l| *l == m);
    let mut wrong = Vec::new();
    for (module, deps) in &graph {
        let Some(mine) = rank(module) else {
            wrong.push(format!("module {module} is not in the layers"));
            continue;
        };
        for d in deps {
            if rank(d).is_none_or(|r| r >= mine) && Some(module.as_str()) != top {
                wrong.push(format!("{module} uses {d}, which is not below it"));
            }
        }
    }
    if !wrong.is_empty() {
        wrong.push(format!("graph: {graph:#?}"));
    }
    wrong
}

#[test]
fn dependencies_point_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let wrong = layering_faults(&src, LAYERS, Some("testing"));
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_soak_tools_dependencies_point_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("soak/src");
    let wrong = layering_faults(&src, SOAK_LAYERS, None);
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn an_import_loop_is_found() {
    // The check itself, on the soak tool's loop before it was broken: runtime.rs held
    // cluster.rs's state, and cluster.rs took the whole runtime back.
    let dir = std::env::temp_dir().join(format!("ssehub-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("runtime.rs"), "use crate::cluster::ClusterRt;\n").unwrap();
    std::fs::write(dir.join("cluster.rs"), "use crate::runtime::Rt;\n").unwrap();
    let wrong = layering_faults(&dir, &["cluster", "runtime"], None);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(wrong[0], "cluster uses runtime, which is not below it");
    assert_eq!(wrong.len(), 2, "{wrong:#?}");
}

#[test]
fn no_source_file_is_too_big() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("soak/src"), &mut files);
    let big: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).ok()?.lines().count();
            (n > MAX_LINES).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(big.is_empty(), "over {MAX_LINES} lines: {big:#?}");
}

#[test]
fn the_scanner_reads_code_not_comments() {
    // The scanner itself: a use in code counts, one in a comment does not.
    let found = uses("use crate::hub::Hub; // crate::server\nlet x = crate::sse::heartbeat();");
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["hub".to_owned(), "sse".to_owned()]
    );
}

/// Names that belong to one implementation of the publish port (`src/port/`).
const BACKEND_NAMES: &[&str] = &[
    "port::memory",
    "port::file",
    "port::redis",
    "Broker",
    "LogWriter",
    "LogFile",
    "FileLog",
];

/// Only the publish port's own files name one of its backends: everything else
/// publishes through `Port::publish` and reads `Port::status` (#19).
#[test]
fn no_file_outside_the_port_names_a_backend() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let port = src.join("port");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(&port)) {
        let text = std::fs::read_to_string(file).expect("read file");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for name in BACKEND_NAMES {
                let hit = code.match_indices(name).any(|(i, _)| {
                    let after = code[i + name.len()..].chars().next();
                    !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                });
                if hit {
                    found.push(format!("{}:{}: {name}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "backends named outside src/port/: {found:#?}"
    );
    assert!(port.join("memory.rs").exists() && port.join("file.rs").exists());
}
