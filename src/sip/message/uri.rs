//! URIs (RFC 3261 §19.1, §25.1): SIP and SIPS URIs are parsed into their
//! parts; other schemes (`tel:`, RFC 4475 §3.3.2's novel schemes) are kept
//! opaque so that a 416 can be answered.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::error::SyntaxError;
use super::params::{ParamContext, Params};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    Sip(SipUri),
    /// Any other absolute URI: `scheme` is lower-cased, `opaque` verbatim.
    Other {
        scheme: String,
        opaque: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// The user part as received (escapes kept; may hold `;` and `?`).
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
    /// The raw `?h=v&...` part without the `?`.
    pub headers: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A host name, lower-cased (host names compare case-insensitively).
    Domain(String),
    Ip(IpAddr),
}

impl Host {
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Ip(ip) => Some(*ip),
            Host::Domain(_) => None,
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Host, SyntaxError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or(SyntaxError::Expected("']'"))?;
            return inner
                .parse::<Ipv6Addr>()
                .map(|ip| Host::Ip(IpAddr::V6(ip)))
                .map_err(|_| SyntaxError::Expected("IPv6 address"));
        }
        if s.is_empty() {
            return Err(SyntaxError::Expected("host"));
        }
        if let Ok(ip) = s.parse::<Ipv4Addr>() {
            return Ok(Host::Ip(IpAddr::V4(ip)));
        }
        // RFC 3261 §25.1 hostname: labels of alphanumerics and '-', dot separated,
        // optionally with a trailing dot.
        let valid = s.split('.').enumerate().all(|(i, label)| {
            (label.is_empty() && i > 0 && s.ends_with('.'))
                || (!label.is_empty()
                    && label
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-'))
        });
        if valid {
            Ok(Host::Domain(s.to_ascii_lowercase()))
        } else {
            Err(SyntaxError::Expected("host name"))
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Self {
        Host::Ip(ip)
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
        }
    }
}

fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

/// Checks that every byte is allowed or part of a valid `%HH` escape.
fn check_escaped(
    s: &str,
    allowed: impl Fn(u8) -> bool,
    what: &'static str,
) -> Result<(), SyntaxError> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return Err(SyntaxError::Expected(what));
            }
            i += 3;
        } else if allowed(b[i]) {
            i += 1;
        } else {
            return Err(SyntaxError::Expected(what));
        }
    }
    Ok(())
}

impl SipUri {
    /// A `sip:` URI for `host` with no user, port or parameters.
    pub fn new(host: Host) -> Self {
        SipUri {
            secure: false,
            user: None,
            password: None,
            host,
            port: None,
            params: Params::new(),
            headers: None,
        }
    }

    pub fn with_user(mut self, user: &str) -> Self {
        self.user = Some(user.to_owned());
        self
    }

    /// The user part with `%HH` escapes decoded (RFC 3261 §19.1.2: any
    /// character may be escaped; phones send `*43` as `%2A43` too), for
    /// comparing with dialled numbers. Invalid UTF-8 is replaced.
    pub fn user_unescaped(&self) -> Option<String> {
        let user = self.user.as_deref()?;
        let bytes = user.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                if let Some(b) = user
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The `transport` parameter, lower-cased.
    pub fn transport_param(&self) -> Option<String> {
        self.params
            .get("transport")
            .flatten()
            .map(str::to_ascii_lowercase)
    }

    /// Parses what follows `sip:`/`sips:`.
    fn parse_after_scheme(secure: bool, s: &str) -> Result<SipUri, SyntaxError> {
        let (userinfo, hostpart) = match s.find('@') {
            Some(at) => (Some(&s[..at]), &s[at + 1..]),
            None => (None, s),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (u, p) = match ui.find(':') {
                    Some(c) => (&ui[..c], Some(&ui[c + 1..])),
                    None => (ui, None),
                };
                if u.is_empty() {
                    return Err(SyntaxError::Expected("user"));
                }
                // RFC 3261 §25.1 user-unreserved
                check_escaped(u, |c| is_unreserved(c) || b"&=+$,;?/".contains(&c), "user")?;
                if let Some(p) = p {
                    check_escaped(p, |c| is_unreserved(c) || b"&=+$,".contains(&c), "password")?;
                }
                (Some(u.to_owned()), p.map(str::to_owned))
            }
        };
        let (hostport, headers) = match hostpart.find('?') {
            Some(q) => (&hostpart[..q], Some(&hostpart[q + 1..])),
            None => (hostpart, None),
        };
        let (hostport, params) = match hostport.find(';') {
            Some(i) => (&hostport[..i], &hostport[i..]),
            None => (hostport, ""),
        };
        let (host, port) = split_host_port(hostport)?;
        let params = Params::parse(params, ParamContext::Uri)?;
        if let Some(h) = headers {
            check_escaped(
                h,
                |c| is_unreserved(c) || b"[]/?:+$=&".contains(&c),
                "URI headers",
            )?;
        }
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers: headers.map(str::to_owned),
        })
    }
}

/// Splits `host[:port]`, with IPv6 references in brackets.
pub(crate) fn split_host_port(s: &str) -> Result<(Host, Option<u16>), SyntaxError> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']').ok_or(SyntaxError::Expected("']'"))?;
        let rest = &s[end + 1..];
        let port = match rest {
            "" => None,
            _ => Some(rest.strip_prefix(':').ok_or(SyntaxError::Expected("':'"))?),
        };
        (&s[..=end], port)
    } else {
        match s.rfind(':') {
            Some(c) => (&s[..c], Some(&s[c + 1..])),
            None => (s, None),
        }
    };
    let host = Host::parse(host)?;
    let port = match port {
        Some(p) => Some(super::scan::parse_digits::<u16>(p)?),
        None => None,
    };
    Ok((host, port))
}

impl FromStr for Uri {
    type Err = SyntaxError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let colon = s.find(':').ok_or(SyntaxError::Expected("URI scheme"))?;
        let scheme = &s[..colon];
        let rest = &s[colon + 1..];
        let scheme_ok = scheme
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
        if !scheme_ok {
            return Err(SyntaxError::Expected("URI scheme"));
        }
        if scheme.eq_ignore_ascii_case("sip") {
            return SipUri::parse_after_scheme(false, rest).map(Uri::Sip);
        }
        if scheme.eq_ignore_ascii_case("sips") {
            return SipUri::parse_after_scheme(true, rest).map(Uri::Sip);
        }
        // RFC 3986 absolute-URI: no white space or delimiters of the SIP
        // message around it.
        if rest.is_empty()
            || rest
                .bytes()
                .any(|c| c <= b' ' || c >= 0x7f || matches!(c, b'<' | b'>' | b'"'))
        {
            return Err(SyntaxError::Expected("URI"));
        }
        Ok(Uri::Other {
            scheme: scheme.to_ascii_lowercase(),
            opaque: rest.to_owned(),
        })
    }
}

impl Uri {
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other { .. } => None,
        }
    }

    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Other { scheme, .. } => scheme,
        }
    }
}

impl From<SipUri> for Uri {
    fn from(u: SipUri) -> Self {
        Uri::Sip(u)
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}", self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Other { scheme, opaque } => write!(f, "{scheme}:{opaque}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(s: &str) -> SipUri {
        match s.parse::<Uri>() {
            Ok(Uri::Sip(u)) => u,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn parses_user_host_port_params_headers() {
        let u = sip("sip:alice:secret@Example.COM:5070;transport=tcp;lr?subject=hi&x=y");
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("secret"));
        assert_eq!(u.host, Host::Domain("example.com".into()));
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.transport_param().as_deref(), Some("tcp"));
        assert!(u.params.contains("lr"));
        assert_eq!(u.headers.as_deref(), Some("subject=hi&x=y"));
    }

    #[test]
    fn ipv6_and_torture_users() {
        let u = sip("sip:[::1]:5060");
        assert_eq!(
            u.host,
            Host::Ip("::1".parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
        );
        assert_eq!(u.to_string(), "sip:[::1]:5060");
        // RFC 4475 §3.1.1.9: ';' inside the user part.
        let u = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
        // RFC 4475 §3.1.1.4: an escaped NUL stays escaped.
        assert_eq!(
            sip("sip:null-%00-null@example.com").user.as_deref(),
            Some("null-%00-null")
        );
    }

    #[test]
    fn other_schemes_are_opaque() {
        assert_eq!(
            "tel:+15550100".parse::<Uri>(),
            Ok(Uri::Other {
                scheme: "tel".into(),
                opaque: "+15550100".into()
            })
        );
        assert!(matches!(
            "soap.beep://192.0.2.103:3002".parse::<Uri>(),
            Ok(Uri::Other { .. })
        ));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "<sip:user@example.com>",
            "sip:user@",
            "sip:@host",
            "sip:host:99999",
            "sip:a%zz@host",
            "sip:[::1",
            "sip:ho st",
            "sip:host;",
        ] {
            assert!(bad.parse::<Uri>().is_err(), "{bad} accepted");
        }
    }
}
