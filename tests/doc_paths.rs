//! Docs point at files that exist: every Rust source path that `docs/*.md`, `README.md`
//! and the crate and module docs (`//!` lines) of both packages name is a file of this
//! tree. A file that moves or goes away fails this test until its mentions follow it.
//!
//! What counts as a mention: a code span holding one path that ends in `.rs` (an optional
//! `:LINE` or `:FROM-TO` after it is dropped), and, outside code spans, a word with a `/`
//! in it that ends in `.rs` (`src/server/publish.rs`; never part of a URL). A name is
//! looked for, in order, from the repository's root, from the crate's `src/` (so
//! `server/writer.rs` is `src/server/writer.rs`), and, in a module doc, beside the file
//! and in the module's own folder and its parent's. A bare name (`head.rs`, no `/`) only
//! has to exist somewhere in its crate's `src/`, since prose names files by their
//! folder's heading.

use std::path::{Path, PathBuf};

/// The repository's root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `.rs` paths `text` names, in order of appearance (duplicates kept).
fn mentions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            // A code span: one path, perhaps with a line number after it.
            let span = part.trim();
            let path = match span.find(".rs:") {
                Some(k)
                    if span[k + 4..]
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == '-') =>
                {
                    &span[..k + 3]
                }
                _ => span,
            };
            if path.ends_with(".rs") && is_path(path) {
                out.push(path.to_owned());
            }
        } else {
            // Prose: words with a folder in them.
            for word in part.split(|c: char| !(c.is_ascii_alphanumeric() || "_./-".contains(c))) {
                let word = word.trim_end_matches('.');
                if word.contains('/') && word.ends_with(".rs") && !word.starts_with('/') {
                    out.push(word.to_owned());
                }
            }
        }
    }
    out
}

/// Whether `s` reads as a relative file path (no spaces, no `::`, no URL).
fn is_path(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c))
}

/// Whether `name`, named in `doc` (a file under `crate_src`'s crate, or a markdown file),
/// is a file of the tree.
fn exists(name: &str, doc: &Path, crate_src: &Path) -> bool {
    if !name.contains('/') {
        let mut files = Vec::new();
        all_files(crate_src, &mut files);
        return files
            .iter()
            .any(|f| f.file_name().is_some_and(|n| n == name));
    }
    let mut bases = vec![root(), crate_src.to_path_buf()];
    if doc.extension().is_some_and(|e| e == "rs") {
        let dir = doc.parent().expect("a file's folder");
        bases.push(dir.to_path_buf());
        bases.push(doc.with_extension(""));
        if let Some(up) = dir.parent().filter(|up| up.starts_with(crate_src)) {
            bases.push(up.to_path_buf());
        }
    }
    bases.iter().any(|b| b.join(name).is_file())
}

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a folder") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            all_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The `//!` lines of a Rust file, as text.
fn inner_docs(text: &str) -> String {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("//!"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn docs_name_only_files_that_exist() {
    let root = root();
    // (the doc, its text, the crate `src/` its names are relative to)
    let mut docs: Vec<(PathBuf, String, PathBuf)> = Vec::new();
    let mut md: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("read docs/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    md.push(root.join("README.md"));
    for p in md {
        let text = std::fs::read_to_string(&p).expect("read a doc");
        docs.push((p, text, root.join("src")));
    }
    for src in [root.join("src"), root.join("soak/src")] {
        let mut files = Vec::new();
        all_files(&src, &mut files);
        for f in files
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "rs"))
        {
            let text = inner_docs(&std::fs::read_to_string(&f).expect("read a source"));
            docs.push((f, text, src.clone()));
        }
    }
    let mut missing = Vec::new();
    let mut checked = 0;
    for (doc, text, crate_src) in &docs {
        for name in mentions(text) {
            checked += 1;
            if !exists(&name, doc, crate_src) {
                let shown = doc.strip_prefix(&root).unwrap_or(doc).display();
                missing.push(format!("{shown} names `{name}`, which does not exist"));
            }
        }
    }
    missing.dedup();
    assert!(missing.is_empty(), "{missing:#?}");
    assert!(
        checked > 50,
        "only {checked} mentions found: is the scanner broken?"
    );
}

#[test]
fn the_scanner_finds_paths_in_code_spans_and_prose() {
    let text = "Code: `src/http/head.rs:685` and `hub/mod.rs`, `head.rs`; not `parse::framing`, \
                `a b.rs` or https://example.com/src/x.rs. In prose: tests/publish.rs.";
    assert_eq!(
        mentions(text),
        [
            "src/http/head.rs",
            "hub/mod.rs",
            "head.rs",
            "tests/publish.rs"
        ]
    );
    let src = root().join("src");
    let lib = src.join("lib.rs");
    assert!(exists("src/http/head.rs", &lib, &src));
    assert!(exists("server/writer.rs", &lib, &src));
    assert!(exists("head.rs", &lib, &src));
    assert!(!exists("src/http/parse.rs", &lib, &src));
    assert!(!exists("parse.rs", &lib, &src));
    // Module-relative: beside the file, in the module's folder, in its parent's.
    let server = src.join("server/mod.rs");
    assert!(exists("server/writer.rs", &server, &src));
    let soak = root().join("soak/src");
    assert!(exists("tests/layout.rs", &soak.join("main.rs"), &soak));
}
