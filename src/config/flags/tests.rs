//! The flag table against what is made from it: the help text, README's configuration
//! table and the defaults `Config` really has.

use super::*;
use crate::config::{Command, Config};

/// README, with its configuration table between the table's head and the first line
/// after it that is not a row.
fn readme() -> (String, std::ops::Range<usize>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let text = std::fs::read_to_string(path).expect("read README.md");
    let head = markdown_table().lines().next().unwrap().to_owned();
    let start = text
        .find(&format!("\n{head}\n"))
        .map(|i| i + 1)
        .expect("README has the configuration table's head");
    let len: usize = text[start..]
        .lines()
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.len() + 1)
        .sum();
    (text, start..start + len)
}

/// The cells of a table row, `\|` kept inside a cell, outer spaces and backticks gone.
fn cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out.iter().map(|c| c.trim().replace('`', "")).collect()
}

#[test]
fn readme_configuration_table_matches_the_flag_table() {
    let (text, range) = readme();
    if std::env::var_os("UPDATE_README").is_some() {
        let mut new = text.clone();
        new.replace_range(range.clone(), &markdown_table());
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        std::fs::write(path, new).expect("write README.md");
        return;
    }
    let fix = "make README's table from the flag table: UPDATE_README=1 cargo test --lib readme";
    let rows: Vec<Vec<String>> = text[range].lines().skip(2).map(cells).collect();
    let names: Vec<&str> = FLAGS.iter().map(|f| f.name).collect();
    let readme_names: Vec<String> = rows
        .iter()
        .map(|r| {
            let usage = &r[0];
            let name = usage.trim_start_matches("--");
            name.split(' ').next().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(readme_names, names, "README lists other flags; {fix}");
    for (row, f) in rows.iter().zip(FLAGS) {
        assert_eq!(row.len(), 5, "README row of --{}: {row:?}; {fix}", f.name);
        assert_eq!(row[0], f.usage(), "README's --{} usage; {fix}", f.name);
        assert_eq!(row[1], f.env(), "README's twin of --{}; {fix}", f.name);
        let default = f.default.markdown().replace('`', "");
        assert_eq!(row[2], default, "README's default of --{}; {fix}", f.name);
        assert_eq!(row[3], f.unit, "README's unit of --{}; {fix}", f.name);
        let meaning = cells(&format!("| {} |", f.help.replace('\n', " ")))[0].clone();
        assert!(
            row[4].starts_with(&meaning),
            "README's meaning of --{}: {:?}; {fix}",
            f.name,
            row[4]
        );
    }
}

#[test]
fn defaults_in_the_table_are_the_defaults_config_has() {
    let run = |args: &[&str]| match Config::from_args(args.iter().copied(), |_| None) {
        Ok(Command::Run(c)) => *c,
        other => panic!("{args:?}: {other:?}"),
    };
    let mut checked = 0;
    for f in FLAGS {
        let Some(value) = f.default.value() else {
            continue;
        };
        // A flag that only counts beside another one gets that one too.
        let base: &[&str] = match f.name {
            "fsync" => &["--history-file", "h"],
            "redis-stream" => &["--redis", "redis://h"],
            _ => &[],
        };
        let flag = format!("--{}", f.name);
        let mut given = base.to_vec();
        given.extend([flag.as_str(), value.as_str()]);
        assert_eq!(run(&given), run(base), "--{} {value}", f.name);
        checked += 1;
    }
    assert!(checked >= 20, "{checked}");
}

#[test]
fn help_is_made_from_the_table() {
    let text = help();
    let mut names = Vec::new();
    for f in FLAGS {
        let usage = f.usage();
        let first = f.help.lines().next().unwrap();
        // A usage wider than the column stands on its own line, its help below.
        let wanted = if usage.len() < HELP_COLUMN - 3 {
            format!("\n  {usage:<w$} {first}", w = HELP_COLUMN - 3)
        } else {
            format!("\n  {usage}\n  {:<w$} {first}", "", w = HELP_COLUMN - 3)
        };
        assert!(text.contains(&wanted), "{usage} is not in the help text");
        assert!(!names.contains(&f.name), "--{} twice", f.name);
        if let Some(old) = f.alias {
            assert!(text.contains(&format!("(older name --{old}, still accepted)")));
            assert!(!names.contains(&old), "--{old} twice");
        }
        if let Some(d) = f.default.help() {
            assert!(text.contains(&format!("[{d}]")), "--{} [{d}]", f.name);
        }
        names.push(f.name);
    }
    for line in text.lines() {
        assert!(line.chars().count() <= HELP_WIDTH, "too wide: {line:?}");
    }
    assert!(text.contains("\n  --queue N                  frames queued per subscriber"));
    assert!(text.contains("evicted [100]\n"));
}

#[test]
fn every_flag_and_alias_has_its_environment_twin() {
    assert_eq!(
        find_env("SSEHUB_MAX_CLIENTS").unwrap().name,
        "max-connections"
    );
    assert_eq!(find_env("SSEHUB_QUEUE").unwrap().name, "queue");
    assert!(find_env("SSEHUB_NOPE").is_none());
    for f in FLAGS {
        assert_eq!(find_env(&f.env()).unwrap().name, f.name);
        assert_eq!(find(f.name).unwrap().name, f.name);
        assert!(f.env().starts_with("SSEHUB_") && !f.env().contains('-'));
    }
}
