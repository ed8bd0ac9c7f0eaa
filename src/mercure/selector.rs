//! Mercure's topic patterns: RFC 6570 URI templates (levels 1 and 2) and a subset of the
//! WHATWG URL Pattern syntax, each compiled once and matched against a whole topic with
//! no allocation.
//!
//! | form | supported | matches | refused (`400` on subscribe) |
//! |---|---|---|---|
//! | URI template | `{var}` | 0+ unreserved characters (`A-Z a-z 0-9 - . _ ~`), `%`, non-ASCII | `{?x}`, `{/x}`, `{.x}`, `{;x}`, `{&x}`, `{x,y}`, `{x:3}`, `{x*}`, `{}` |
//! | | `{+var}`, `{#var}` | the same plus the reserved characters (`: / ? # [ ] @ ! $ & ' ( ) * + , ; =`); `{#var}` after a literal `#` | |
//! | URL pattern | `:name` | 1+ characters other than `/ ? #` | a modifier after it (`:id?`, `:id+`, `:id*`) |
//! | | `*` | 0+ characters of any kind | regexp groups `( )`, groups `{ }`, escapes `\` |
//!
//! A URL pattern is matched against the topic's text as a whole, not component by
//! component: `https://example.com/books/:id` matches `https://example.com/books/1` and
//! not `https://example.com/books/1?x` (write `…/:id*` for that).
//!
//! Matching runs the pattern as a small automaton over the topic's bytes (one bit per
//! position of the pattern, at most [`MAX_PATTERN_STEPS`]), so a pattern never costs more
//! than its length times the topic's, whatever it holds, and needs no memory per event.

use std::fmt;

/// Most steps (literal bytes plus variables) of one compiled pattern. **Why:** the
/// automaton's state is a bitset of this many bits on the stack.
pub const MAX_PATTERN_STEPS: usize = 511;

const WORDS: usize = (MAX_PATTERN_STEPS + 1).div_ceil(64);

/// A byte class a variable matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// `{var}`: unreserved, `%`, non-ASCII.
    Unreserved,
    /// `{+var}`, `{#var}`: unreserved and reserved, `%`, non-ASCII.
    Reserved,
    /// URL pattern `:name`: anything but `/ ? #`.
    Segment,
    /// URL pattern `*`: anything.
    Any,
}

impl Class {
    fn has(self, b: u8) -> bool {
        let unreserved = b.is_ascii_alphanumeric() || b"-._~%".contains(&b) || b >= 0x80;
        match self {
            Class::Unreserved => unreserved,
            Class::Reserved => unreserved || b":/?#[]@!$&'()*+,;=".contains(&b),
            Class::Segment => !b"/?#".contains(&b),
            Class::Any => true,
        }
    }
}

/// One step of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// This byte, once.
    Byte(u8),
    /// Zero or more bytes of the class.
    Star(Class),
    /// One or more bytes of the class (`:name`).
    Plus(Class),
}

/// Which syntax a pattern was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// An RFC 6570 URI template (Mercure 0.x `topic=`, token selectors).
    UriTemplate,
    /// A WHATWG URL pattern (Mercure 1.0 `match_urlpattern=`).
    UrlPattern,
}

/// A compiled pattern (see the module docs for what each syntax supports).
#[derive(Clone, PartialEq, Eq)]
pub struct Pattern {
    source: Box<str>,
    syntax: Syntax,
    /// Literal bytes every match starts with: a cheap refusal before the automaton.
    prefix_len: usize,
    steps: Box<[Step]>,
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PatternError {}

impl Pattern {
    /// Compiles `source` written in `syntax`.
    ///
    /// # Errors
    ///
    /// [`PatternError`] naming what is not supported, or a pattern over
    /// [`MAX_PATTERN_STEPS`] steps.
    ///
    /// # Examples
    ///
    /// ```
    /// use ssehub::mercure::{Pattern, Syntax};
    /// let t = Pattern::new("https://example.com/books/{id}", Syntax::UriTemplate).unwrap();
    /// assert!(t.matches("https://example.com/books/1"));
    /// assert!(!t.matches("https://example.com/books/1/reviews"));
    /// let p = Pattern::new("https://example.com/books/:id", Syntax::UrlPattern).unwrap();
    /// assert!(p.matches("https://example.com/books/1"));
    /// assert!(Pattern::new("https://example.com{?q}", Syntax::UriTemplate).is_err());
    /// ```
    pub fn new(source: &str, syntax: Syntax) -> Result<Pattern, PatternError> {
        let steps = match syntax {
            Syntax::UriTemplate => template_steps(source)?,
            Syntax::UrlPattern => url_pattern_steps(source)?,
        };
        if steps.len() > MAX_PATTERN_STEPS {
            return Err(PatternError(format!(
                "pattern longer than {MAX_PATTERN_STEPS} steps"
            )));
        }
        let prefix_len = steps
            .iter()
            .take_while(|s| matches!(s, Step::Byte(_)))
            .count();
        Ok(Pattern {
            source: source.into(),
            syntax,
            prefix_len,
            steps: steps.into(),
        })
    }

    /// The text it was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The syntax it was written in.
    pub fn syntax(&self) -> Syntax {
        self.syntax
    }

    /// Whether it matches the whole of `topic`.
    pub fn matches(&self, topic: &str) -> bool {
        let t = topic.as_bytes();
        let steps = &self.steps;
        let prefix = &steps[..self.prefix_len];
        if t.len() < prefix.len() || !prefix.iter().zip(t).all(|(s, b)| *s == Step::Byte(*b)) {
            return false;
        }
        let mut cur = Bits::default();
        cur.set(self.prefix_len);
        close(steps, &mut cur);
        for &b in &t[self.prefix_len..] {
            let mut next = Bits::default();
            let mut any = false;
            for i in cur.ones(steps.len()) {
                match steps[i] {
                    Step::Byte(c) if c == b => {
                        next.set(i + 1);
                        any = true;
                    }
                    Step::Star(class) if class.has(b) => {
                        next.set(i);
                        any = true;
                    }
                    Step::Plus(class) if class.has(b) => {
                        // A `Plus` is lowered as `Byte`-like entry into the `Star` after it.
                        next.set(i + 1);
                        any = true;
                    }
                    _ => {}
                }
            }
            if !any {
                return false;
            }
            close(steps, &mut next);
            cur = next;
        }
        cur.get(steps.len())
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}({:?})", self.syntax, self.source)
    }
}

/// The automaton's state: which steps are reached.
#[derive(Default, Clone, Copy)]
struct Bits([u64; WORDS]);

impl Bits {
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    /// The set positions below `end`, in order.
    fn ones(self, end: usize) -> impl Iterator<Item = usize> {
        (0..WORDS).flat_map(move |w| {
            let mut word = self.0[w];
            std::iter::from_fn(move || {
                if word == 0 {
                    return None;
                }
                let bit = word.trailing_zeros() as usize;
                word &= word - 1;
                Some(w * 64 + bit)
            })
            .filter(move |&i| i < end)
        })
    }
}

/// Adds what is reached without reading a byte: past every `Star` that is reached.
fn close(steps: &[Step], bits: &mut Bits) {
    for (i, step) in steps.iter().enumerate() {
        if bits.get(i) && matches!(step, Step::Star(_)) {
            bits.set(i + 1);
        }
    }
}

fn literal(out: &mut Vec<Step>, text: &str) {
    out.extend(text.bytes().map(Step::Byte));
}

/// Pushes `class` as zero or more (after a `Star` of the same class, nothing: the two
/// match the same).
fn star(out: &mut Vec<Step>, class: Class) {
    if out.last() != Some(&Step::Star(class)) {
        out.push(Step::Star(class));
    }
}

fn template_steps(source: &str) -> Result<Vec<Step>, PatternError> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err(PatternError("URI template: '}' without '{'".into()));
        }
        literal(&mut out, &rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| PatternError("URI template: '{' without '}'".into()))?;
        let expr = &after[..close];
        let (class, name) = match expr.as_bytes().first() {
            Some(b'+') => (Class::Reserved, &expr[1..]),
            Some(b'#') => {
                out.push(Step::Byte(b'#'));
                (Class::Reserved, &expr[1..])
            }
            Some(op) if b"./;?&=,!@|".contains(op) => {
                return Err(PatternError(format!(
                    "URI template: the operator '{}' is not supported (levels 1 and 2 only: {{var}}, {{+var}}, {{#var}})",
                    *op as char
                )));
            }
            _ => (Class::Unreserved, expr),
        };
        let ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'%');
        if !ok {
            return Err(PatternError(format!(
                "URI template: unsupported expression {{{expr}}} (one variable, no modifier)"
            )));
        }
        star(&mut out, class);
        rest = &after[close + 1..];
    }
    literal(&mut out, rest);
    Ok(out)
}

fn url_pattern_steps(source: &str) -> Result<Vec<Step>, PatternError> {
    let mut out = Vec::new();
    let b = source.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'*' => {
                star(&mut out, Class::Any);
                i += 1;
            }
            b':' if b
                .get(i + 1)
                .is_some_and(|&c| c.is_ascii_alphabetic() || c == b'_') =>
            {
                let start = i + 1;
                i = start;
                while b
                    .get(i)
                    .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_')
                {
                    i += 1;
                }
                if b.get(i).is_some_and(|c| b"?+*".contains(c)) {
                    return Err(PatternError(format!(
                        "URL pattern: a modifier after :{} is not supported",
                        &source[start..i]
                    )));
                }
                out.push(Step::Plus(Class::Segment));
                out.push(Step::Star(Class::Segment));
            }
            c @ (b'(' | b')' | b'{' | b'}' | b'\\') => {
                return Err(PatternError(format!(
                    "URL pattern: '{}' is not supported (named segments :name and * only)",
                    c as char
                )));
            }
            c => {
                out.push(Step::Byte(c));
                i += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Template, topic, whether it matches.
    const TEMPLATES: &[(&str, &str, bool)] = &[
        ("https://example.com/{id}", "https://example.com/123", true),
        ("https://example.com/{id}", "https://example.com/abc", true),
        (
            "https://example.com/{id}",
            "https://example.com/123/sub",
            false,
        ),
        ("https://example.com/{id}", "https://example.com/", true),
        ("https://example.com/{id}", "http://example.com/1", false),
        (
            "https://example.net/foo/{random}",
            "https://example.net/foo/9f3a",
            true,
        ),
        (
            "https://example.net/bar/{var}",
            "https://example.net/foo/will-not-match}",
            false,
        ),
        (
            "https://example.com/{+path}",
            "https://example.com/a/b?c=d",
            true,
        ),
        (
            "https://example.com/{#frag}",
            "https://example.com/#a/b",
            true,
        ),
        (
            "https://example.com/{#frag}",
            "https://example.com/a",
            false,
        ),
        ("/books/{id}/reviews/{rid}", "/books/1/reviews/2", true),
        ("/books/{id}/reviews/{rid}", "/books/1/reviews/", true),
        ("/books/{id}/reviews/{rid}", "/books/1/2/reviews/3", false),
        ("/caf/{x}", "/caf/é", true),
        ("/caf/{x}", "/caf/%C3%A9", true),
        ("{a}-{b}-{c}", "x-y-z", true),
        ("{a}-{b}-{c}", "x-y", false),
        ("{a}-{b}-{c}", "--", true),
        ("{a}/{+b}", "x/y/z", true),
        ("{+a}/{b}", "x/y/z", true),
        ("{+a}/{b}", "x/y/", true),
        ("{+a}/{b}/", "x/y", false),
        ("plain", "plain", true),
        ("plain", "plainer", false),
    ];

    #[test]
    fn uri_templates() {
        for &(template, topic, want) in TEMPLATES {
            let p = Pattern::new(template, Syntax::UriTemplate).unwrap();
            assert_eq!(p.matches(topic), want, "{template} on {topic}");
        }
    }

    #[test]
    fn refused_templates_say_why() {
        for bad in [
            "a{?q}", "a{/p}", "a{.x}", "a{;x}", "a{&x}", "a{x,y}", "a{x:3}", "a{x*}", "a{}", "a{x",
            "a}x",
        ] {
            assert!(Pattern::new(bad, Syntax::UriTemplate).is_err(), "{bad}");
        }
        let long = "x".repeat(MAX_PATTERN_STEPS + 1);
        assert!(Pattern::new(&long, Syntax::UriTemplate).is_err());
        assert!(Pattern::new(&long[1..], Syntax::UriTemplate).is_ok());
    }

    /// URL pattern, topic, whether it matches.
    const URL_PATTERNS: &[(&str, &str, bool)] = &[
        (
            "https://example.net/foo/:random",
            "https://example.net/foo/9f3a",
            true,
        ),
        (
            "https://example.net/foo/:random",
            "https://example.net/foo/",
            false,
        ),
        (
            "https://example.net/foo/:random",
            "https://example.net/foo/a/b",
            false,
        ),
        (
            "https://example.net/bar/:var",
            "https://example.net/foo/will-not-match",
            false,
        ),
        (
            "https://example.com/users/:id/notifications",
            "https://example.com/users/7/notifications",
            true,
        ),
        (
            "https://example.com/books/*",
            "https://example.com/books/1/reviews",
            true,
        ),
        (
            "https://example.com/books/*",
            "https://example.com/books/",
            true,
        ),
        (
            "https://example.com/books/*",
            "https://example.com/book",
            false,
        ),
        ("*", "anything at all", true),
        ("/a/:x/:y", "/a/1/2", true),
        ("/a/:x/:y", "/a/1", false),
        ("urn:device:thermostat-01", "urn:device:thermostat-01", true),
    ];

    #[test]
    fn url_patterns() {
        for &(pattern, topic, want) in URL_PATTERNS {
            let p = Pattern::new(pattern, Syntax::UrlPattern).unwrap();
            assert_eq!(p.matches(topic), want, "{pattern} on {topic}");
        }
        for bad in ["/a/(\\d+)", "/a/:id?", "/a/:id+", "/a{/b}?", "/a\\:b"] {
            assert!(Pattern::new(bad, Syntax::UrlPattern).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_hostile_pattern_stays_linear() {
        // Many variables separated by a byte they also match: a backtracking matcher
        // would take n^k steps here.
        let pattern = "{a}-".repeat(40) + "!";
        let p = Pattern::new(&pattern, Syntax::UriTemplate).unwrap();
        let topic = "-".repeat(2000);
        let start = std::time::Instant::now();
        assert!(!p.matches(&topic));
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }
}
