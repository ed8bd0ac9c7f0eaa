//! The environment-file reader, one row per case: what a line gives, or why it is refused.

use super::*;

/// A file and the (name, value) pairs it gives.
const GOOD: &[(&str, &[(&str, &str)])] = &[
    ("", &[]),
    ("\n\n   \n", &[]),
    ("# a comment\n; another\n   # indented\n", &[]),
    ("SSEHUB_QUEUE=100", &[("SSEHUB_QUEUE", "100")]),
    ("SSEHUB_QUEUE=100\r\n", &[("SSEHUB_QUEUE", "100")]),
    ("  SSEHUB_QUEUE = 100  ", &[("SSEHUB_QUEUE", "100")]),
    ("SSEHUB_QUEUE=", &[("SSEHUB_QUEUE", "")]),
    ("A=x=y", &[("A", "x=y")]),
    ("A=x # not a comment", &[("A", "x # not a comment")]),
    ("A=\"  spaced  \"", &[("A", "  spaced  ")]),
    ("A='  spaced  '", &[("A", "  spaced  ")]),
    (
        "A=\"say \\\"hi\\\" \\\\ \\n\"",
        &[("A", "say \"hi\" \\ \\n")],
    ),
    ("A='no \\\"escapes\\\"'", &[("A", "no \\\"escapes\\\"")]),
    ("A=\"\"", &[("A", "")]),
    ("A=\"x\"   ", &[("A", "x")]),
    ("A=1\nB=2\nA=3", &[("A", "1"), ("B", "2"), ("A", "3")]),
    ("OTHER_PROGRAM=1", &[("OTHER_PROGRAM", "1")]),
];

/// A file and the line and words of its refusal.
const BAD: &[(&str, usize, &str)] = &[
    ("SSEHUB_QUEUE", 1, "expected NAME=value"),
    ("# ok\n\nnot an assignment", 3, "expected NAME=value"),
    ("export SSEHUB_QUEUE=1", 1, "'export' is shell syntax"),
    ("A=1\n  export\tB=2", 2, "'export' is shell syntax"),
    ("=1", 1, "is not a variable name"),
    ("SSEHUB-QUEUE=1", 1, "is not a variable name"),
    ("A=\"open", 1, "unclosed double quote"),
    ("A=\"open\\\"", 1, "unclosed double quote"),
    ("A='open", 1, "unclosed single quote"),
    ("A=\"x\" y", 1, "text after the closing quote: 'y'"),
    ("A='it''", 1, "text after the closing quote: '''"),
    ("A=one \\\n  two", 1, "continues on the next line"),
];

#[test]
fn good_lines_give_their_assignments() {
    for (text, want) in GOOD {
        let got = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
        let got: Vec<(&str, &str)> = got
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(&got, want, "{text:?}");
    }
}

#[test]
fn bad_lines_are_refused_with_their_number() {
    for (text, line, words) in BAD {
        let e = parse(text).expect_err(text);
        assert_eq!(e.line, *line, "{text:?}: {e:?}");
        assert!(e.what.contains(words), "{text:?}: {e:?}");
        assert!(!e.what.contains('\n'), "{text:?}: {e:?}");
    }
}

#[test]
fn line_numbers_count_blank_and_comment_lines() {
    let a = parse("# top\n\nA=1\n; x\nB=2\n").unwrap();
    assert_eq!(
        a.iter().map(|a| a.line).collect::<Vec<_>>(),
        [3, 5],
        "{a:?}"
    );
}
