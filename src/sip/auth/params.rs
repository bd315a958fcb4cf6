//! The auth-param list of a `Digest` challenge or credentials, and its
//! printer.
//!
//! Grammar (RFC 3261 §25.1, §20.44 / §20.7; RFC 7616 §3.3):
//!
//! ```text
//! value        = "Digest" LWS param *(COMMA param)
//! param        = token EQUAL ( token / quoted-string )
//! quoted-string = SWS DQUOTE *(qdtext / quoted-pair) DQUOTE
//! quoted-pair  = "\" (%x00-09 / %x0B-0C / %x0E-7F)
//! ```
//!
//! The parser is deliberately tolerant where tolerance is unambiguous, because
//! carriers and phones are sloppy: any mix of SP/HTAB/CR/LF around separators,
//! unquoted values where a quoted-string is expected (up to the next
//! whitespace, comma or quote), and empty list elements (`a=1,,b=2`, as
//! RFC 7230 §7 allows). It is strict where sloppiness would change meaning or
//! hide an attack: unterminated quotes, invalid escapes and raw control
//! characters inside quotes are errors.

use std::borrow::Cow;

use super::error::{AuthError, Malformed};

/// RFC 3261 §25.1 `token` characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// Linear white space. CR and LF count too so that a header that was not
/// unfolded by the message layer (RFC 3261 §7.3.1) still parses.
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Bytes allowed in a value given without quotes.
fn is_bare_value_byte(b: u8) -> bool {
    b > 0x20 && b != 0x7f && b != b',' && b != b'"'
}

/// Splits off and checks the `Digest` scheme, returning an iterator over the
/// parameters that follow. Scheme and parameter names are case-insensitive
/// (RFC 3261 §25: ABNF literals are case-insensitive).
pub(crate) fn digest_params(input: &str) -> Result<Params<'_>, AuthError> {
    let bytes = input.as_bytes();
    let mut pos = 0;
    while pos < bytes.len() && is_ws(bytes[pos]) {
        pos += 1;
    }
    if pos == bytes.len() {
        return Err(Malformed::Empty.into());
    }
    let start = pos;
    while pos < bytes.len() && is_token_byte(bytes[pos]) {
        pos += 1;
    }
    if !input[start..pos].eq_ignore_ascii_case("Digest") {
        return Err(AuthError::UnsupportedScheme);
    }
    Ok(Params {
        input,
        pos,
        need_comma: false,
        done: false,
    })
}

/// Iterator over `(name, value)` pairs; values are unescaped, and borrowed
/// unless unescaping had to change them.
pub(crate) struct Params<'a> {
    input: &'a str,
    pos: usize,
    need_comma: bool,
    done: bool,
}

impl<'a> Params<'a> {
    fn peek(&self) -> Option<u8> {
        self.input.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
        // Every predicate used stops only at ASCII bytes, so both ends are
        // char boundaries.
        self.input.get(start..self.pos).unwrap_or_default()
    }

    fn param(&mut self) -> Result<(&'a str, Cow<'a, str>), AuthError> {
        let name_at = self.pos;
        let name = self.take_while(is_token_byte);
        if name.is_empty() {
            return Err(Malformed::ExpectedName { at: name_at }.into());
        }
        self.skip_ws();
        if self.peek() != Some(b'=') {
            return Err(Malformed::ExpectedEquals { at: self.pos }.into());
        }
        self.pos += 1;
        self.skip_ws();
        let value = if self.peek() == Some(b'"') {
            self.quoted()?
        } else {
            let at = self.pos;
            let bare = self.take_while(is_bare_value_byte);
            if bare.is_empty() {
                return Err(Malformed::MissingValue { at }.into());
            }
            Cow::Borrowed(bare)
        };
        Ok((name, value))
    }

    /// A quoted-string starting at the opening quote. Escapes are resolved
    /// per quoted-pair; a folded line (CRLF followed by white space) inside
    /// the quotes stands for a single SP (RFC 3261 §7.3.1).
    fn quoted(&mut self) -> Result<Cow<'a, str>, AuthError> {
        let bytes = self.input.as_bytes();
        let open = self.pos;
        let mut i = open + 1;
        // Start of the run of bytes not yet copied to `owned`.
        let mut run = i;
        let mut owned: Option<String> = None;
        loop {
            let Some(&b) = bytes.get(i) else {
                return Err(Malformed::UnterminatedQuote { at: open }.into());
            };
            match b {
                b'"' => {
                    let tail = &self.input[run..i];
                    self.pos = i + 1;
                    return Ok(match owned {
                        Some(mut s) => {
                            s.push_str(tail);
                            Cow::Owned(s)
                        }
                        None => Cow::Borrowed(tail),
                    });
                }
                b'\\' => {
                    let Some(&escaped) = bytes.get(i + 1) else {
                        return Err(Malformed::UnterminatedQuote { at: open }.into());
                    };
                    if !escaped.is_ascii() || escaped == b'\r' || escaped == b'\n' {
                        return Err(Malformed::InvalidEscape { at: i }.into());
                    }
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(&self.input[run..i]);
                    s.push(char::from(escaped));
                    i += 2;
                    run = i;
                }
                b'\r'
                    if bytes.get(i + 1) == Some(&b'\n')
                        && bytes.get(i + 2).is_some_and(|&c| c == b' ' || c == b'\t') =>
                {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(&self.input[run..i]);
                    s.push(' ');
                    i += 2;
                    while bytes.get(i).is_some_and(|&c| c == b' ' || c == b'\t') {
                        i += 1;
                    }
                    run = i;
                }
                b'\t' => i += 1,
                c if c < 0x20 || c == 0x7f => {
                    return Err(Malformed::ControlCharacter { at: i }.into());
                }
                _ => i += 1,
            }
        }
    }
}

impl<'a> Iterator for Params<'a> {
    type Item = Result<(&'a str, Cow<'a, str>), AuthError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            self.skip_ws();
            match self.peek() {
                None => {
                    self.done = true;
                    return None;
                }
                Some(b',') => {
                    self.pos += 1;
                    self.need_comma = false;
                }
                Some(_) if self.need_comma => {
                    self.done = true;
                    return Some(Err(Malformed::ExpectedComma { at: self.pos }.into()));
                }
                Some(_) => {
                    let item = self.param();
                    self.need_comma = true;
                    if item.is_err() {
                        self.done = true;
                    }
                    return Some(item);
                }
            }
        }
    }
}

/// Builds `Digest name="value", name=token, ...`.
pub(crate) struct HeaderWriter {
    out: String,
    empty: bool,
}

impl HeaderWriter {
    pub(crate) fn new() -> Self {
        let mut out = String::with_capacity(256);
        out.push_str("Digest ");
        HeaderWriter { out, empty: true }
    }

    fn name(&mut self, name: &str) {
        if !self.empty {
            self.out.push_str(", ");
        }
        self.empty = false;
        self.out.push_str(name);
        self.out.push('=');
    }

    /// `name="value"`. `"` and `\` are escaped, as are control characters
    /// other than HTAB (quoted-pair). CR and LF cannot be represented at all
    /// (quoted-pair excludes them), so they are written as SP: a value taken
    /// from configuration must never be able to inject a header line.
    pub(crate) fn quoted(&mut self, name: &str, value: &str) {
        self.name(name);
        self.out.push('"');
        for c in value.chars() {
            match c {
                '"' | '\\' => {
                    self.out.push('\\');
                    self.out.push(c);
                }
                '\r' | '\n' => self.out.push(' '),
                '\t' => self.out.push(c),
                c if c.is_ascii_control() => {
                    self.out.push('\\');
                    self.out.push(c);
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }

    /// `name=token`, for values that are tokens by construction.
    pub(crate) fn token(&mut self, name: &str, value: &str) {
        self.name(name);
        self.out.push_str(value);
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// Tracks which known parameters were seen, to reject duplicates
/// (RFC 7616 §3.4), including duplicates of parameters we otherwise ignore.
pub(crate) struct SeenParams<'a> {
    known: u32,
    unknown: Vec<&'a str>,
}

impl<'a> SeenParams<'a> {
    pub(crate) fn new() -> Self {
        SeenParams {
            known: 0,
            unknown: Vec::new(),
        }
    }

    /// Marks known parameter number `index` (its position in the caller's
    /// name table) as seen.
    pub(crate) fn known(&mut self, index: usize, name: &str) -> Result<(), AuthError> {
        let bit = 1u32 << index;
        if self.known & bit != 0 {
            return Err(Malformed::DuplicateParam(name.to_ascii_lowercase()).into());
        }
        self.known |= bit;
        Ok(())
    }

    pub(crate) fn unknown(&mut self, name: &'a str) -> Result<(), AuthError> {
        if self.unknown.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return Err(Malformed::DuplicateParam(name.to_ascii_lowercase()).into());
        }
        self.unknown.push(name);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn collect(input: &str) -> Result<Vec<(String, String)>, AuthError> {
        digest_params(input)?
            .map(|r| r.map(|(n, v)| (n.to_owned(), v.into_owned())))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_quoted_and_token_values() {
        assert_eq!(
            collect(r#"Digest realm="a b", algorithm=MD5, qop="auth""#).unwrap(),
            pairs(&[("realm", "a b"), ("algorithm", "MD5"), ("qop", "auth")])
        );
    }

    #[test]
    fn scheme_is_case_insensitive_and_checked() {
        assert!(collect("digest a=b").is_ok());
        assert!(collect("DIGEST a=b").is_ok());
        assert_eq!(collect("Basic abc"), Err(AuthError::UnsupportedScheme));
        assert_eq!(collect("Digestive a=b"), Err(AuthError::UnsupportedScheme));
        assert_eq!(collect("  "), Err(Malformed::Empty.into()));
        assert_eq!(collect(""), Err(Malformed::Empty.into()));
    }

    #[test]
    fn tolerates_whitespace_and_folding_around_separators() {
        assert_eq!(
            collect("Digest\r\n  a = \"x\"\t,\r\n\tb\t=\ty  ").unwrap(),
            pairs(&[("a", "x"), ("b", "y")])
        );
    }

    #[test]
    fn tolerates_empty_list_elements() {
        assert_eq!(
            collect("Digest ,a=1,, ,b=2,").unwrap(),
            pairs(&[("a", "1"), ("b", "2")])
        );
    }

    #[test]
    fn unquoted_value_runs_to_separator() {
        assert_eq!(
            collect("Digest uri=sip:bob@example.com;transport=tcp,x=y").unwrap(),
            pairs(&[("uri", "sip:bob@example.com;transport=tcp"), ("x", "y")])
        );
    }

    #[test]
    fn resolves_quoted_pairs() {
        assert_eq!(
            collect(r#"Digest a="x\"y\\z\q""#).unwrap(),
            pairs(&[("a", r#"x"y\zq"#)])
        );
    }

    #[test]
    fn borrows_when_nothing_to_unescape() {
        let mut it = digest_params(r#"Digest a="plain""#).unwrap();
        let (_, v) = it.next().unwrap().unwrap();
        assert!(matches!(v, Cow::Borrowed("plain")));
    }

    #[test]
    fn folded_line_inside_quotes_is_one_space() {
        assert_eq!(
            collect("Digest a=\"x\r\n \t y\"").unwrap(),
            pairs(&[("a", "x y")])
        );
    }

    #[test]
    fn keeps_non_ascii_text() {
        assert_eq!(
            collect("Digest a=\"Jürgen ☎\"").unwrap(),
            pairs(&[("a", "Jürgen ☎")])
        );
    }

    #[test]
    fn rejects_syntax_errors() {
        let cases: &[(&str, Malformed)] = &[
            (r#"Digest a="x"#, Malformed::UnterminatedQuote { at: 9 }),
            (r#"Digest a="x\"#, Malformed::UnterminatedQuote { at: 9 }),
            ("Digest a=\"x\\\ny\"", Malformed::InvalidEscape { at: 11 }),
            ("Digest a=\"x\\é\"", Malformed::InvalidEscape { at: 11 }),
            ("Digest a=\"x\ny\"", Malformed::ControlCharacter { at: 11 }),
            (
                "Digest a=\"x\r\ny\"",
                Malformed::ControlCharacter { at: 11 },
            ),
            ("Digest a=\"x\0\"", Malformed::ControlCharacter { at: 11 }),
            ("Digest a=", Malformed::MissingValue { at: 9 }),
            ("Digest a=,b=c", Malformed::MissingValue { at: 9 }),
            ("Digest a", Malformed::ExpectedEquals { at: 8 }),
            ("Digest a b=c", Malformed::ExpectedEquals { at: 9 }),
            ("Digest =x", Malformed::ExpectedName { at: 7 }),
            ("Digest \"a\"=x", Malformed::ExpectedName { at: 7 }),
            ("Digest a=x b=y", Malformed::ExpectedComma { at: 11 }),
            ("Digest a=\"x\"b=y", Malformed::ExpectedComma { at: 12 }),
        ];
        for (input, want) in cases {
            assert_eq!(
                collect(input),
                Err(AuthError::Malformed(want.clone())),
                "{input:?}"
            );
        }
    }

    #[test]
    fn iterator_stops_after_an_error() {
        let mut it = digest_params("Digest a=x b=y, c=d").unwrap();
        assert!(it.next().unwrap().is_ok());
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }

    #[test]
    fn writer_escapes_and_round_trips() {
        let value = "a\"b\\c\td\u{1}e\u{7f}f é";
        let mut w = HeaderWriter::new();
        w.quoted("x", value);
        w.token("algorithm", "MD5");
        let header = w.finish();
        assert_eq!(
            header,
            "Digest x=\"a\\\"b\\\\c\td\\\u{1}e\\\u{7f}f é\", algorithm=MD5"
        );
        assert_eq!(
            collect(&header).unwrap(),
            pairs(&[("x", value), ("algorithm", "MD5")])
        );
    }

    #[test]
    fn writer_never_emits_line_breaks() {
        let mut w = HeaderWriter::new();
        w.quoted("username", "bob\r\nVia: evil");
        let header = w.finish();
        assert!(!header.contains('\r') && !header.contains('\n'));
        assert_eq!(
            collect(&header).unwrap(),
            pairs(&[("username", "bob  Via: evil")])
        );
    }

    #[test]
    fn seen_params_rejects_duplicates() {
        let mut seen = SeenParams::new();
        seen.known(0, "realm").unwrap();
        seen.known(1, "nonce").unwrap();
        assert_eq!(
            seen.known(0, "REALM"),
            Err(Malformed::DuplicateParam("realm".into()).into())
        );
        seen.unknown("domain").unwrap();
        assert_eq!(
            seen.unknown("Domain"),
            Err(Malformed::DuplicateParam("domain".into()).into())
        );
    }
}
