//! The dependency rule of the crate docs, checked on the source: the leaves import only
//! leaves, the hub imports only leaves, and no module imports one that imports it back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The leaves. They may use each other (`sse` and `stats` use `event_id`), nothing else.
const LEAVES: &[&str] = &[
    "http", "event_id", "topic", "sse", "log", "stats", "shutdown", "page",
];

/// Top-level module → the top-level modules its code names as `crate::…`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("dir entry").path();
            let rel = path.strip_prefix(&src).expect("under src");
            let top = rel.components().next().expect("a component");
            let top = top.as_os_str().to_string_lossy().into_owned();
            if top == "bin" || top == "lib.rs" || top == "main.rs" {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let module = top.trim_end_matches(".rs").to_owned();
            let text = std::fs::read_to_string(&path).expect("read a source file");
            let deps = out.entry(module.clone()).or_default();
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (i, _) in line.match_indices("crate::") {
                    let name: String = line[i + "crate::".len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != module {
                        deps.insert(name);
                    }
                }
            }
        }
    }
    out
}

#[test]
fn leaves_and_the_hub_import_only_leaves() {
    let g = graph();
    for (module, deps) in &g {
        if LEAVES.contains(&module.as_str()) || module == "hub" {
            let above: Vec<&String> = deps
                .iter()
                .filter(|d| !LEAVES.contains(&d.as_str()))
                .collect();
            assert!(above.is_empty(), "{module} imports {above:?}");
        }
    }
    assert!(g.contains_key("event_id") && g.contains_key("hub"), "{g:?}");
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let g = graph();
    // Depth-first search for a cycle; `path` is the chain being explored.
    fn visit<'a>(
        g: &'a BTreeMap<String, BTreeSet<String>>,
        m: &'a str,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if done.contains(m) {
            return;
        }
        if let Some(at) = path.iter().position(|p| *p == m) {
            panic!("import cycle: {:?} -> {m}", &path[at..]);
        }
        path.push(m);
        for d in g.get(m).into_iter().flatten() {
            visit(g, d, path, done);
        }
        path.pop();
        done.insert(m);
    }
    let mut done = BTreeSet::new();
    for m in g.keys() {
        visit(&g, m, &mut Vec::new(), &mut done);
    }
}
