//! `;name[=value]` parameter lists, used by URIs and by header values
//! (RFC 3261 §19.1.1, §25.1 `generic-param`).

use std::fmt;

use super::error::SyntaxError;
use super::scan::{is_lws, is_token_char, trim_lws};

/// An ordered parameter list. Names compare case-insensitively; values are
/// kept as received (a quoted value keeps its quotes) so that printing gives
/// back what was parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params(Vec<(String, Option<String>)>);

/// Which grammar applies to parameter names and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamContext {
    /// URI parameters: `paramchar` (unreserved, escaped, `[]/:&+$`), no LWS.
    Uri,
    /// Header parameters: token names, token / host / quoted-string values,
    /// LWS allowed around `;` and `=`.
    Header,
}

impl Params {
    pub fn new() -> Self {
        Params(Vec::new())
    }

    /// The value of `name`: `None` when absent, `Some(None)` for a flag.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name` (replacing an existing value) keeping its position.
    pub fn set(&mut self, name: &str, value: Option<String>) {
        match self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(entry) => entry.1 = value,
            None => self.0.push((name.to_owned(), value)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_deref()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses `;a=b;c` (the leading `;` included, or `s` empty).
    pub(crate) fn parse(s: &str, ctx: ParamContext) -> Result<Params, SyntaxError> {
        let mut params = Params::new();
        let s = match ctx {
            ParamContext::Header => trim_lws(s),
            ParamContext::Uri => s,
        };
        if s.is_empty() {
            return Ok(params);
        }
        let rest = s.strip_prefix(';').ok_or(SyntaxError::Expected("';'"))?;
        for part in split_params(rest)? {
            let part = match ctx {
                ParamContext::Header => trim_lws(part),
                ParamContext::Uri => part,
            };
            let (name, value) = match part.find('=') {
                Some(i) => {
                    let (n, v) = (&part[..i], &part[i + 1..]);
                    match ctx {
                        ParamContext::Header => (trim_lws(n), Some(trim_lws(v))),
                        ParamContext::Uri => (n, Some(v)),
                    }
                }
                None => (part, None),
            };
            validate_name(name, ctx)?;
            if let Some(v) = value {
                validate_value(v, ctx)?;
            }
            params.0.push((name.to_owned(), value.map(str::to_owned)));
        }
        Ok(params)
    }
}

/// Splits on `;` outside quoted strings.
fn split_params(s: &str) -> Result<Vec<&str>, SyntaxError> {
    let mut parts = Vec::new();
    let bytes = s.as_bytes();
    let (mut start, mut in_quotes, mut i) = (0, false, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_quotes => i += 1,
            b'"' => in_quotes = !in_quotes,
            b';' if !in_quotes => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if in_quotes {
        return Err(SyntaxError::UnterminatedQuote);
    }
    parts.push(&s[start..]);
    Ok(parts)
}

pub(crate) fn is_uri_param_char(c: u8) -> bool {
    // RFC 3261 §25.1 paramchar = param-unreserved / unreserved / escaped
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'_'
                | b'.'
                | b'!'
                | b'~'
                | b'*'
                | b'\''
                | b'('
                | b')'
                | b'%'
                | b'['
                | b']'
                | b'/'
                | b':'
                | b'&'
                | b'+'
                | b'$'
        )
}

fn validate_name(name: &str, ctx: ParamContext) -> Result<(), SyntaxError> {
    if name.is_empty() {
        return Err(SyntaxError::Expected("parameter name"));
    }
    let ok = match ctx {
        ParamContext::Uri => name.bytes().all(is_uri_param_char),
        ParamContext::Header => name.bytes().all(is_token_char),
    };
    if ok {
        Ok(())
    } else {
        Err(SyntaxError::Expected("parameter name"))
    }
}

fn validate_value(value: &str, ctx: ParamContext) -> Result<(), SyntaxError> {
    match ctx {
        ParamContext::Uri => {
            if value.bytes().all(is_uri_param_char) {
                Ok(())
            } else {
                Err(SyntaxError::Expected("URI parameter value"))
            }
        }
        ParamContext::Header => {
            if value.starts_with('"') {
                let (_, rest) = super::scan::quoted_string(value)?;
                return if rest.is_empty() {
                    Ok(())
                } else {
                    Err(SyntaxError::Expected("end of quoted parameter"))
                };
            }
            // gen-value = token / host / quoted-string; an IPv6 reference
            // brings brackets and colons.
            if !value.is_empty()
                && value
                    .bytes()
                    .all(|c| is_token_char(c) || matches!(c, b'[' | b']' | b':'))
                && !value.bytes().any(is_lws)
            {
                Ok(())
            } else {
                Err(SyntaxError::Expected("parameter value"))
            }
        }
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.0 {
            match value {
                Some(v) => write!(f, ";{name}={v}")?,
                None => write!(f, ";{name}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_params_tolerate_lws_and_quotes() {
        let p =
            Params::parse(" ; tag = abc ;lr; q=\"a;b\"", ParamContext::Header).unwrap_or_default();
        assert_eq!(p.get("TAG"), Some(Some("abc")));
        assert_eq!(p.get("lr"), Some(None));
        assert_eq!(p.get("q"), Some(Some("\"a;b\"")));
        assert_eq!(p.to_string(), ";tag=abc;lr;q=\"a;b\"");
    }

    #[test]
    fn empty_names_are_rejected() {
        assert!(Params::parse(";;", ParamContext::Header).is_err());
        assert!(Params::parse(";=x", ParamContext::Uri).is_err());
        assert!(Params::parse(";a b", ParamContext::Uri).is_err());
    }
}
