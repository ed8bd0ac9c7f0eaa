//! `--config FILE`: `NAME=value` lines in the format of systemd's `EnvironmentFile=`, so
//! one file serves both `ssehub --config FILE` and a unit's `EnvironmentFile=FILE`.
//!
//! What a line may be:
//! - blank, or a comment: its first character that is not whitespace is `#` or `;`;
//! - `NAME=value`: whitespace around the name and the value is dropped. The value may be
//!   wrapped whole in double quotes (inside them `\"` is a quote and `\\` a backslash;
//!   whitespace is kept) or single quotes (taken as written). A name given twice: the
//!   last line wins, as in an environment.
//!
//! What is refused, with the line number: a line without `=`; a name that is not
//! letters, digits and `_`; an unclosed quote or text after the closing one; an unquoted
//! value ending in `\` (systemd would join the next line to it; this reader does not, so
//! it refuses rather than read the file differently); and the shell's `export NAME=value`
//! (systemd ignores such a line with a warning, so ssehub refuses it rather than use a
//! setting systemd would drop).
//!
//! Which names count is the caller's business ([`Config::from_args`](super::Config)):
//! `SSEHUB_*` names must be flags' twins; other names are left alone, as the file may be
//! shared with other programs.

/// One assignment read from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Its line, from 1.
    pub line: usize,
    /// The name, as written.
    pub name: String,
    /// The value, quotes removed.
    pub value: String,
}

/// Why a line was refused: its number (from 1) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// The line, from 1.
    pub line: usize,
    /// What is wrong, one line.
    pub what: String,
}

/// Reads the assignments of an environment file, in order.
///
/// # Errors
///
/// The first line that is not blank, a comment or a valid assignment.
///
/// # Examples
///
/// ```
/// use ssehub::config::file::parse;
/// let a = parse("# queue\nSSEHUB_QUEUE=7\nSSEHUB_BIND=\"0.0.0.0:80\"\n").unwrap();
/// assert_eq!((a[0].name.as_str(), a[0].value.as_str()), ("SSEHUB_QUEUE", "7"));
/// assert_eq!(a[1].value, "0.0.0.0:80");
/// assert_eq!(parse("\n\nSSEHUB_QUEUE").unwrap_err().line, 3);
/// ```
pub fn parse(text: &str) -> Result<Vec<Assignment>, LineError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |what: &str| LineError {
            line,
            what: what.to_owned(),
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let Some((name, value)) = trimmed.split_once('=') else {
            return Err(err("expected NAME=value"));
        };
        let name = name.trim_end();
        if name.starts_with("export ") || name.starts_with("export\t") {
            return Err(err(
                "'export' is shell syntax, not systemd's: write NAME=value",
            ));
        }
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(err(&format!(
                "'{name}' is not a variable name (letters, digits and _)"
            )));
        }
        let value = unquote(value.trim_start()).map_err(|what| err(&what))?;
        out.push(Assignment {
            line,
            name: name.to_owned(),
            value,
        });
    }
    Ok(out)
}

/// The value of an assignment: without its quotes, or as written (trailing whitespace
/// already gone).
fn unquote(v: &str) -> Result<String, String> {
    let mut chars = v.chars();
    match chars.next() {
        Some('"') => {
            let mut out = String::new();
            loop {
                match chars.next() {
                    None => return Err("unclosed double quote".into()),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c @ ('"' | '\\')) => out.push(c),
                        Some(c) => {
                            out.push('\\');
                            out.push(c);
                        }
                        None => return Err("unclosed double quote".into()),
                    },
                    Some(c) => out.push(c),
                }
            }
            after_quote(chars.as_str(), out)
        }
        Some('\'') => {
            let rest = chars.as_str();
            let Some(end) = rest.find('\'') else {
                return Err("unclosed single quote".into());
            };
            after_quote(&rest[end + 1..], rest[..end].to_owned())
        }
        _ if v.ends_with('\\') => Err(
            "a value ending in \\ continues on the next line for systemd; \
             not supported here: join the lines"
                .into(),
        ),
        _ => Ok(v.to_owned()),
    }
}

/// A quoted value must end at its closing quote.
fn after_quote(rest: &str, value: String) -> Result<String, String> {
    if rest.trim().is_empty() {
        Ok(value)
    } else {
        Err(format!("text after the closing quote: '{}'", rest.trim()))
    }
}

#[cfg(test)]
mod tests;
