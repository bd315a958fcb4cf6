//! Header names and the header set of a message.
//!
//! The headers every transaction and dialog needs (Via, From, To, Call-ID,
//! CSeq, Max-Forwards, Contact, Route, Record-Route) are parsed into typed
//! fields when the message is read, so a `Request` or `Response` that exists
//! is valid ("parse, don't validate"). Every other header is kept as an
//! unfolded text value, in order, and parsed by whoever needs it.

use std::fmt;
use std::str::FromStr;

use super::error::SyntaxError;
use super::method::Method;
use super::name_addr::NameAddr;
use super::scan::{is_token, is_word_char, parse_digits, split_commas, trim_lws};
use super::via::Via;

macro_rules! header_names {
    ($($variant:ident => $name:literal $(, $compact:literal)?;)*) => {
        /// A header name; known names are matched case-insensitively and
        /// compact forms (RFC 3261 §7.3.3) are expanded.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum HeaderName {
            $($variant,)*
            /// Any other header, kept as received.
            Other(String),
        }

        impl HeaderName {
            pub fn as_str(&self) -> &str {
                match self {
                    $(HeaderName::$variant => $name,)*
                    HeaderName::Other(name) => name,
                }
            }

            fn known(name: &str) -> Option<HeaderName> {
                $(
                    if name.eq_ignore_ascii_case($name) $(|| name.eq_ignore_ascii_case($compact))? {
                        return Some(HeaderName::$variant);
                    }
                )*
                None
            }
        }
    };
}

header_names! {
    Via => "Via", "v";
    From => "From", "f";
    To => "To", "t";
    CallId => "Call-ID", "i";
    CSeq => "CSeq";
    MaxForwards => "Max-Forwards";
    Contact => "Contact", "m";
    Route => "Route";
    RecordRoute => "Record-Route";
    ContentLength => "Content-Length", "l";
    ContentType => "Content-Type", "c";
    ContentEncoding => "Content-Encoding", "e";
    Expires => "Expires";
    MinExpires => "Min-Expires";
    Allow => "Allow";
    Accept => "Accept";
    Supported => "Supported", "k";
    Require => "Require";
    ProxyRequire => "Proxy-Require";
    Unsupported => "Unsupported";
    Authorization => "Authorization";
    WwwAuthenticate => "WWW-Authenticate";
    ProxyAuthorization => "Proxy-Authorization";
    ProxyAuthenticate => "Proxy-Authenticate";
    UserAgent => "User-Agent";
    Server => "Server";
    Date => "Date";
    Warning => "Warning";
    RetryAfter => "Retry-After";
    Subject => "Subject", "s";
    Event => "Event", "o";
    ReferTo => "Refer-To", "r";
    Path => "Path";
}

impl FromStr for HeaderName {
    type Err = SyntaxError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !is_token(s) {
            return Err(SyntaxError::Expected("header name"));
        }
        Ok(HeaderName::known(s).unwrap_or_else(|| HeaderName::Other(s.to_owned())))
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl HeaderName {
    /// Case-insensitive comparison for `Other` names too.
    pub fn matches(&self, other: &HeaderName) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        }
    }
}

/// The Call-ID (RFC 3261 §20.8): compared byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId(String);

impl CallId {
    pub fn new(id: impl Into<String>) -> Self {
        CallId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for CallId {
    type Err = SyntaxError;

    /// `word [ "@" word ]`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.splitn(2, '@');
        let ok = parts.all(|w| !w.is_empty() && w.bytes().all(is_word_char));
        if ok {
            Ok(CallId(s.to_owned()))
        } else {
            Err(SyntaxError::Expected("Call-ID word"))
        }
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl FromStr for CSeq {
    type Err = SyntaxError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = trim_lws(s);
        let split = s
            .find([' ', '\t'])
            .ok_or(SyntaxError::Expected("CSeq method"))?;
        // RFC 3261 §8.1.1.5: the sequence number is below 2^31; larger
        // values (RFC 4475 §3.1.2.4) are rejected.
        let seq: u32 = parse_digits(&s[..split])?;
        if seq >= 1 << 31 {
            return Err(SyntaxError::OutOfRange);
        }
        let method = trim_lws(&s[split..]).parse()?;
        Ok(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// The Contact header set: either `*` (only in REGISTER, RFC 3261 §10.2.2)
/// or a list of addresses (possibly empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts {
    List(Vec<NameAddr>),
    Wildcard,
}

impl Default for Contacts {
    fn default() -> Self {
        Contacts::List(Vec::new())
    }
}

impl Contacts {
    pub fn first(&self) -> Option<&NameAddr> {
        match self {
            Contacts::List(l) => l.first(),
            Contacts::Wildcard => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Contacts::List(l) if l.is_empty())
    }
}

/// Parses a comma-separated header value into its elements.
pub(crate) fn parse_list<T>(
    value: &str,
    parse: impl Fn(&str) -> Result<T, SyntaxError>,
) -> Result<Vec<T>, SyntaxError> {
    split_commas(value)?.into_iter().map(parse).collect()
}

/// Another header: its name and its unfolded, trimmed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    pub value: String,
}

/// The headers of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    pub via: Vec<Via>,
    pub max_forwards: Option<u8>,
    pub from: NameAddr,
    pub to: NameAddr,
    pub call_id: CallId,
    pub cseq: CSeq,
    pub contact: Contacts,
    pub route: Vec<NameAddr>,
    pub record_route: Vec<NameAddr>,
    /// Every other header, in the order received.
    pub other: Vec<Header>,
}

impl Headers {
    pub fn new(from: NameAddr, to: NameAddr, call_id: CallId, cseq: CSeq) -> Self {
        Headers {
            via: Vec::new(),
            max_forwards: None,
            from,
            to,
            call_id,
            cseq,
            contact: Contacts::default(),
            route: Vec::new(),
            record_route: Vec::new(),
            other: Vec::new(),
        }
    }

    pub fn top_via(&self) -> Option<&Via> {
        self.via.first()
    }

    /// The first value of a non-typed header.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.other
            .iter()
            .find(|h| h.name.matches(name))
            .map(|h| h.value.as_str())
    }

    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.other
            .iter()
            .filter(move |h| h.name.matches(name))
            .map(|h| h.value.as_str())
    }

    /// The comma-separated tokens of every occurrence of a list header
    /// (Allow, Supported, Require...).
    pub fn tokens<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all(name)
            .flat_map(|v| v.split(','))
            .map(trim_lws)
            .filter(|t| !t.is_empty())
    }

    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        self.other.push(Header {
            name,
            value: value.into(),
        });
    }

    pub fn remove(&mut self, name: &HeaderName) {
        self.other.retain(|h| !h.name.matches(name));
    }

    /// Writes every header line (without Content-Length) to `out`.
    pub(crate) fn write(&self, out: &mut String) {
        use std::fmt::Write as _;
        // Writing to a String cannot fail.
        for v in &self.via {
            let _ = write!(out, "Via: {v}\r\n");
        }
        if let Some(mf) = self.max_forwards {
            let _ = write!(out, "Max-Forwards: {mf}\r\n");
        }
        let _ = write!(
            out,
            "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\n",
            self.from, self.to, self.call_id, self.cseq
        );
        match &self.contact {
            Contacts::Wildcard => out.push_str("Contact: *\r\n"),
            Contacts::List(list) => {
                for c in list {
                    let _ = write!(out, "Contact: {c}\r\n");
                }
            }
        }
        for r in &self.route {
            let _ = write!(out, "Route: {r}\r\n");
        }
        for r in &self.record_route {
            let _ = write!(out, "Record-Route: {r}\r\n");
        }
        for h in &self.other {
            let _ = write!(out, "{}: {}\r\n", h.name, h.value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_expand_compact_forms() {
        assert_eq!("v".parse::<HeaderName>(), Ok(HeaderName::Via));
        assert_eq!("cALL-id".parse::<HeaderName>(), Ok(HeaderName::CallId));
        assert_eq!(
            "X-Foo".parse::<HeaderName>(),
            Ok(HeaderName::Other("X-Foo".into()))
        );
        assert!(HeaderName::Other("x-foo".into()).matches(&HeaderName::Other("X-FOO".into())));
        assert!("Bad Name".parse::<HeaderName>().is_err());
    }

    #[test]
    fn cseq_limits() {
        assert_eq!(
            "0009\r\n INVITE".replace("\r\n", "").parse::<CSeq>(),
            Ok(CSeq {
                seq: 9,
                method: Method::Invite
            })
        );
        assert!("36893488147419103232 INVITE".parse::<CSeq>().is_err());
        assert!("2147483648 INVITE".parse::<CSeq>().is_err());
        assert!("-1 INVITE".parse::<CSeq>().is_err());
    }

    #[test]
    fn call_id_words() {
        assert!("abc@192.0.2.4".parse::<CallId>().is_ok());
        assert!("a@b@c".parse::<CallId>().is_err());
        assert!("has space".parse::<CallId>().is_err());
    }
}
