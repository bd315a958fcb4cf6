//! Character classes and small scanners shared by the header parsers
//! (RFC 3261 §25.1).

use super::error::SyntaxError;

/// RFC 3261 §25.1 `token` characters.
pub(crate) fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// RFC 3261 §25.1 `word` characters (Call-ID).
pub(crate) fn is_word_char(c: u8) -> bool {
    is_token_char(c)
        || matches!(
            c,
            b'(' | b')'
                | b'<'
                | b'>'
                | b':'
                | b'\\'
                | b'"'
                | b'/'
                | b'['
                | b']'
                | b'?'
                | b'{'
                | b'}'
        )
}

pub(crate) fn is_lws(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

pub(crate) fn trim_lws(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

/// Splits a header value on top-level commas: commas inside quoted strings
/// and inside `<...>` do not separate values (RFC 3261 §7.3.1).
pub(crate) fn split_commas(value: &str) -> Result<Vec<&str>, SyntaxError> {
    let bytes = value.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_quotes => i += 1,
            b'"' if !in_angle => in_quotes = !in_quotes,
            b'<' if !in_quotes => in_angle = true,
            b'>' if !in_quotes => in_angle = false,
            b',' if !in_quotes && !in_angle => {
                parts.push(trim_lws(&value[start..i]));
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if in_quotes {
        return Err(SyntaxError::UnterminatedQuote);
    }
    if in_angle {
        return Err(SyntaxError::UnterminatedAngle);
    }
    parts.push(trim_lws(&value[start..]));
    Ok(parts)
}

/// Parses a quoted string at the start of `s` (which must begin with `"`),
/// returning its unescaped content and the rest after the closing quote.
pub(crate) fn quoted_string(s: &str) -> Result<(String, &str), SyntaxError> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, '"')) => {}
        _ => return Err(SyntaxError::Expected("quoted string")),
    }
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            // RFC 3261 §25.1 quoted-pair: any octet but CR and LF.
            '\\' => match chars.next() {
                Some((_, '\r' | '\n')) | None => return Err(SyntaxError::UnterminatedQuote),
                Some((_, escaped)) => out.push(escaped),
            },
            '\r' | '\n' => return Err(SyntaxError::UnterminatedQuote),
            c => out.push(c),
        }
    }
    Err(SyntaxError::UnterminatedQuote)
}

/// Writes `s` as a quoted string, escaping `"` and `\`.
pub(crate) fn write_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Parses an unsigned decimal made only of digits, rejecting signs, empty
/// strings and overflow (RFC 4475 §3.1.2.3/§3.1.2.4).
pub(crate) fn parse_digits<T: std::str::FromStr>(s: &str) -> Result<T, SyntaxError> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(SyntaxError::Expected("digits"));
    }
    s.parse().map_err(|_| SyntaxError::OutOfRange)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_respect_quotes_and_angles() {
        let parts = split_commas(r#""a, b" <sip:x@y;p=1,2>, <sip:z>"#).unwrap_or_default();
        assert_eq!(parts, vec![r#""a, b" <sip:x@y;p=1,2>"#, "<sip:z>"]);
        assert!(split_commas(r#""open, <sip:x>"#).is_err());
    }

    #[test]
    fn quoted_string_unescapes() {
        let (text, rest) = quoted_string(r#""J \"R\" \\" <sip:x>"#).unwrap_or_default();
        assert_eq!(text, r#"J "R" \"#);
        assert_eq!(rest, " <sip:x>");
        assert!(quoted_string(r#""unterminated"#).is_err());
    }

    #[test]
    fn digits_reject_signs_and_overflow() {
        assert_eq!(parse_digits::<u32>("0042"), Ok(42));
        assert!(parse_digits::<u32>("-1").is_err());
        assert!(parse_digits::<u32>("36893488147419103232").is_err());
        assert!(parse_digits::<u8>("300").is_err());
    }
}
