//! `name-addr` / `addr-spec` with header parameters: From, To, Contact,
//! Route, Record-Route (RFC 3261 §20.10, §20.20, §20.39, §25.1).

use std::fmt;

use super::error::SyntaxError;
use super::params::{ParamContext, Params};
use super::scan::{is_lws, is_token, quoted_string, trim_lws, write_quoted};
use super::uri::Uri;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, unquoted and unescaped.
    pub display: Option<String>,
    pub uri: Uri,
    /// Header parameters (`tag`, `expires`, `q`, `lr` on the header...).
    pub params: Params,
}

impl NameAddr {
    pub fn new(uri: Uri) -> Self {
        NameAddr {
            display: None,
            uri,
            params: Params::new(),
        }
    }

    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }

    pub fn with_tag(mut self, tag: &str) -> Self {
        self.params.set("tag", Some(tag.to_owned()));
        self
    }

    pub fn parse(s: &str) -> Result<NameAddr, SyntaxError> {
        let s = trim_lws(s);
        if s.is_empty() {
            return Err(SyntaxError::Empty);
        }
        let (display, rest) = if s.starts_with('"') {
            let (d, rest) = quoted_string(s)?;
            let rest = trim_lws(rest);
            if !rest.starts_with('<') {
                return Err(SyntaxError::Expected("'<' after display name"));
            }
            (Some(d), rest)
        } else if let Some(lt) = s.find('<') {
            let d = trim_lws(&s[..lt]);
            // Unquoted display names are tokens separated by LWS (RFC 3261
            // §25.1); RFC 4475 §3.1.2.14's "Bell, Alexander" fails here.
            if !d.is_empty() && !d.split([' ', '\t']).filter(|w| !w.is_empty()).all(is_token) {
                return Err(SyntaxError::Expected("display name"));
            }
            (
                if d.is_empty() {
                    None
                } else {
                    Some(d.to_owned())
                },
                &s[lt..],
            )
        } else {
            return Self::parse_addr_spec(s);
        };
        let inner_end = rest.find('>').ok_or(SyntaxError::UnterminatedAngle)?;
        let inner = &rest[1..inner_end];
        // RFC 4475 §3.1.2.13: no white space inside the angle brackets.
        if inner.bytes().next().is_some_and(is_lws) || inner.bytes().last().is_some_and(is_lws) {
            return Err(SyntaxError::Expected("URI without surrounding spaces"));
        }
        let uri = inner.parse::<Uri>()?;
        let params = Params::parse(&rest[inner_end + 1..], ParamContext::Header)?;
        Ok(NameAddr {
            display,
            uri,
            params,
        })
    }

    /// `addr-spec *(;param)`: the URI ends at the first `;`, and may carry
    /// neither parameters nor headers of its own (RFC 3261 §20.10).
    fn parse_addr_spec(s: &str) -> Result<NameAddr, SyntaxError> {
        let (uri, params) = match s.find(';') {
            Some(i) => (trim_lws(&s[..i]), &s[i..]),
            None => (s, ""),
        };
        // RFC 4475 §3.1.2.12: a URI with '?' or ',' needs <...>.
        if uri.contains(['?', ',']) || uri.bytes().any(is_lws) {
            return Err(SyntaxError::Expected("name-addr with <...>"));
        }
        Ok(NameAddr {
            display: None,
            uri: uri.parse()?,
            params: Params::parse(params, ParamContext::Header)?,
        })
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            let mut quoted = String::with_capacity(d.len() + 3);
            write_quoted(&mut quoted, d);
            write!(f, "{quoted} ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let n = NameAddr::parse(r#""J Rosenberg \\\"" <sip:jdrosen@example.com> ; tag = 98asjd8"#);
        let n = n.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.display.as_deref(), Some(r#"J Rosenberg \""#));
        assert_eq!(n.tag(), Some("98asjd8"));
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.display.as_deref(), Some("caller"));
        let n = NameAddr::parse("sip:caller@example.net;tag=2").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.tag(), Some("2"));
        assert_eq!(n.to_string(), "<sip:caller@example.net>;tag=2");
    }

    #[test]
    fn torture_rejections() {
        for bad in [
            r#""Watson, Thomas" < sip:t.watson@example.org >"#,
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            r#""Mr. J. User <sip:j.user@example.com>"#,
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "<sip:x@y",
            "",
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
