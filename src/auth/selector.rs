//! Topic selectors: which topics a token's `subscribe` or `publish` claim covers.
//!
//! The three forms are in [`Selector`]'s docs.

use std::fmt;

use crate::mercure::{Pattern, PatternError, Syntax};
use crate::topic::Topic;

/// Longest selector in a token. **Unit:** bytes. **Why:** it fits any prefix or Mercure
/// template one meets, and a token cannot make matching costly (a template's automaton
/// is at most this many steps).
pub const MAX_SELECTOR_BYTES: usize = 256;

/// Most selectors in one list (`subscribe` or `publish`). **Why:** a private event is
/// matched against every selector of every reader; 64 bounds that scan as the stream's
/// own topic list is bounded.
pub const MAX_SELECTORS: usize = 64;

/// One selector: an exact topic name, `*`, or a prefix (`orders/*`).
///
/// A selector is one of three forms:
///
/// | selector | matches | does not match |
/// |---|---|---|
/// | `orders/1` | `orders/1` only (exact name) | `orders/10`, `orders` |
/// | `*` | every topic | |
/// | `orders/*` | `orders/1`, `orders/eu/2` (what comes before the `*`, then one or more characters) | `orders`, `orders/`, `order/1` |
///
/// Only a trailing `*` is special. A selector in any other form (a Mercure URI template
/// such as `https://example.com/books/{id}`, a `*` in the middle) is kept as an exact
/// name, and the token stays valid, so a token minted for a Mercure hub is accepted
/// unchanged.
///
/// On the Mercure path the same token is read by Mercure's rules instead
/// ([`Selectors::mercure`]): only a bare `*` is a wildcard (`orders/*` is the exact name
/// `orders/*` there), and a selector holding `{` is a URI template
/// ([`Selector::Template`]).
#[derive(Clone, PartialEq, Eq)]
pub enum Selector {
    /// `*`: every topic.
    Any,
    /// A name without a trailing `*`: that topic only.
    Exact(Box<str>),
    /// `prefix*`: topics that start with `prefix` and are longer than it.
    Prefix(Box<str>),
    /// A URI template or URL pattern (Mercure's rules only, see [`Selectors::mercure`]).
    Template(Box<Pattern>),
    /// An exact name from a Mercure 1.0 access token: that topic only, under any rules
    /// (a `{` in it is no template).
    Literal(Box<str>),
}

impl Selector {
    /// Reads one selector. Never fails: see [`Selector`] for the forms.
    ///
    /// # Examples
    ///
    /// ```
    /// use ssehub::auth::Selector;
    /// assert!(Selector::parse("orders/*").matches("orders/eu/2"));
    /// assert!(!Selector::parse("orders/*").matches("orders"));
    /// assert!(Selector::parse("*").matches("anything"));
    /// assert!(!Selector::parse("news").matches("news/1"));
    /// ```
    pub fn parse(text: &str) -> Selector {
        match text.strip_suffix('*') {
            Some("") => Selector::Any,
            Some(prefix) => Selector::Prefix(prefix.into()),
            None => Selector::Exact(text.into()),
        }
    }

    /// A Mercure 1.0 access token's `match`: a URL pattern when `url_pattern`, else an
    /// exact name (a bare `*` is every topic). Never turned by [`Selectors::mercure`].
    ///
    /// # Errors
    ///
    /// A URL pattern this hub does not support.
    pub fn access_token(text: &str, url_pattern: bool) -> Result<Selector, PatternError> {
        Ok(match (text, url_pattern) {
            ("*", false) => Selector::Any,
            (_, false) => Selector::Literal(text.into()),
            (_, true) => Selector::Template(Box::new(Pattern::new(text, Syntax::UrlPattern)?)),
        })
    }

    /// Whether this selector covers the topic named `topic`.
    pub fn matches(&self, topic: &str) -> bool {
        match self {
            Selector::Any => true,
            Selector::Exact(name) | Selector::Literal(name) => **name == *topic,
            Selector::Prefix(prefix) => topic.len() > prefix.len() && topic.starts_with(&**prefix),
            Selector::Template(t) => t.matches(topic),
        }
    }

    /// The same selector read by Mercure's rules: a prefix is the exact name it was
    /// written as, an exact name holding `{` is a URI template (kept exact when it is
    /// not one this hub supports: it then matches only itself).
    fn mercure(&self) -> Selector {
        match self {
            Selector::Any => Selector::Any,
            Selector::Prefix(prefix) => Selector::Exact(format!("{prefix}*").into()),
            Selector::Exact(name) if name.contains('{') => {
                match Pattern::new(name, Syntax::UriTemplate) {
                    Ok(t) => Selector::Template(Box::new(t)),
                    Err(_) => Selector::Exact(name.clone()),
                }
            }
            other => other.clone(),
        }
    }
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Any => f.write_str("\"*\""),
            Selector::Exact(name) | Selector::Literal(name) => write!(f, "{name:?}"),
            Selector::Prefix(prefix) => write!(f, "\"{}*\"", prefix.escape_debug()),
            Selector::Template(t) => write!(f, "{:?}", t.source()),
        }
    }
}

/// A list of selectors, as in a token's `subscribe` or `publish` claim: it covers a
/// topic when any of its selectors does. Empty (the claim is missing): covers nothing.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Selectors(Box<[Selector]>);

impl Selectors {
    /// Reads each of `texts` with [`Selector::parse`]. The caller bounds the count and
    /// lengths ([`MAX_SELECTORS`], [`MAX_SELECTOR_BYTES`]; token verification does).
    ///
    /// # Examples
    ///
    /// ```
    /// use ssehub::auth::Selectors;
    /// use ssehub::Topic;
    /// let s = Selectors::new(["alerts", "orders/*"]);
    /// assert!(s.matches(&Topic::new("orders/7").unwrap()));
    /// assert!(!s.matches(&Topic::new("news").unwrap()));
    /// ```
    pub fn new<'a>(texts: impl IntoIterator<Item = &'a str>) -> Selectors {
        Selectors(texts.into_iter().map(Selector::parse).collect())
    }

    /// The same list read by Mercure's rules, for the Mercure path: only a bare `*` is a
    /// wildcard, and selectors holding `{` are URI templates.
    ///
    /// # Examples
    ///
    /// ```
    /// use ssehub::auth::Selectors;
    /// use ssehub::Topic;
    /// let t = |n: &str| Topic::new(n).unwrap();
    /// let s = Selectors::new(["orders/*", "https://e.com/books/{id}"]);
    /// assert!(s.matches(&t("orders/1")));
    /// let m = s.mercure();
    /// assert!(!m.matches(&t("orders/1")));
    /// assert!(m.matches(&t("orders/*")));
    /// assert!(m.matches(&t("https://e.com/books/1")));
    /// ```
    pub fn mercure(&self) -> Selectors {
        Selectors(self.0.iter().map(Selector::mercure).collect())
    }

    /// Whether any selector covers `topic`.
    pub fn matches(&self, topic: &Topic) -> bool {
        self.0.iter().any(|s| s.matches(topic.as_str()))
    }

    /// The selectors.
    pub fn as_slice(&self) -> &[Selector] {
        &self.0
    }

    /// Whether the list is empty (covers nothing).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Selector> for Selectors {
    fn from_iter<I: IntoIterator<Item = Selector>>(iter: I) -> Selectors {
        Selectors(iter.into_iter().collect())
    }
}

impl fmt::Debug for Selectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Selector, topic, whether it matches.
    const TABLE: &[(&str, &str, bool)] = &[
        // Exact names.
        ("a", "a", true),
        ("a", "b", false),
        ("orders/1", "orders/1", true),
        ("orders/1", "orders/10", false),
        ("orders/1", "orders", false),
        ("news", "news/1", false),
        ("News", "news", false),
        // Everything.
        ("*", "a", true),
        ("*", "orders/eu/2", true),
        // Prefixes: one or more characters after the prefix.
        ("orders/*", "orders/1", true),
        ("orders/*", "orders/eu/2", true),
        ("orders/*", "orders", false),
        ("orders/*", "orders/", false),
        ("orders/*", "order/1", false),
        ("orders/*", "ordersx", false),
        ("orders/*", "xorders/1", false),
        ("a*", "ab", true),
        ("a*", "a", false),
        // Anything else is an exact name no topic can equal.
        ("a*b", "axb", false),
        ("a*b", "a*b", true),
        (
            "https://example.com/books/{id}",
            "https://example.com/books/1",
            false,
        ),
        ("", "a", false),
        ("**", "*x", true),
        ("**", "x", false),
    ];

    #[test]
    fn selector_table() {
        for &(selector, topic, want) in TABLE {
            assert_eq!(
                Selector::parse(selector).matches(topic),
                want,
                "{selector:?} on {topic:?}"
            );
        }
    }

    #[test]
    fn a_list_matches_when_any_selector_does() {
        let s = Selectors::new(["a", "orders/*"]);
        for (topic, want) in [
            ("a", true),
            ("orders/1", true),
            ("b", false),
            ("orders", false),
        ] {
            assert_eq!(s.matches(&Topic::new(topic).unwrap()), want, "{topic}");
        }
        assert!(!Selectors::default().matches(&Topic::new("a").unwrap()));
        assert!(Selectors::default().is_empty());
    }

    #[test]
    fn mercure_rules_on_the_mercure_path() {
        // Selector, topic, whether it matches by Mercure's rules.
        let table: &[(&str, &str, bool)] = &[
            ("*", "anything", true),
            ("orders/*", "orders/1", false),
            ("orders/*", "orders/*", true),
            ("a*", "ab", false),
            ("a", "a", true),
            ("https://e.com/books/{id}", "https://e.com/books/1", true),
            ("https://e.com/books/{id}", "https://e.com/books/1/2", false),
            ("https://e.com/{+p}", "https://e.com/a/b", true),
            ("https://e.com{?q}", "https://e.com{?q}", true),
            ("https://e.com{?q}", "https://e.com?q=1", false),
        ];
        for &(selector, topic, want) in table {
            let s = Selectors::new([selector]).mercure();
            assert_eq!(
                s.matches(&Topic::new(topic).unwrap()),
                want,
                "{selector:?} on {topic:?}"
            );
        }
    }

    #[test]
    fn debug_shows_the_selectors() {
        let s = Selectors::new(["*", "a", "b/*"]);
        assert_eq!(format!("{s:?}"), r#"["*", "a", "b/*"]"#);
    }
}
