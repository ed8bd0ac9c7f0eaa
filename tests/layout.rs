//! The shape of the code: dependencies between the crate's modules point one way, and no
//! source file grows past what one can hold in one's head.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crate's top-level modules, from the leaves up. A module may use only modules
/// listed before it (and `testing`, on top, anything).
const LAYERS: &[&str] = &[
    "event_id", "log", "shutdown", "stats", "topic", "auth", "sse", "http", "redis", "page",
    "publish", "hub", "config", "broker", "producer", "server", "testing",
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

#[test]
fn dependencies_point_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read file");
        let deps = graph.entry(module.clone()).or_default();
        for used in uses(&text) {
            if used != module && LAYERS.contains(&used.as_str()) {
                deps.insert(used);
            }
        }
    }
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut wrong = Vec::new();
    for (module, deps) in &graph {
        let Some(mine) = rank(module) else {
            wrong.push(format!("module {module} is not in LAYERS"));
            continue;
        };
        for d in deps {
            if rank(d).is_none_or(|r| r >= mine) && module != "testing" {
                wrong.push(format!("{module} uses {d}, which is not below it"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}\ngraph: {graph:#?}");
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
