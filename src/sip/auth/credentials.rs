//! Digest credentials: the value of `Authorization` or
//! `Proxy-Authorization`, RFC 3261 §22.2-22.3, §25.1 `digest-response`;
//! RFC 2617 §3.2.2; RFC 7616 §3.4.

use super::digest::{nonce_count_hex, Algorithm, Qop};
use super::error::{AuthError, Malformed};
use super::params::{digest_params, HeaderWriter, SeenParams};

/// `Digest` credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name, as configured on the client.
    pub username: String,
    /// The realm of the challenge being answered.
    pub realm: String,
    /// The server nonce being answered.
    pub nonce: String,
    /// The `digest-uri`: the Request-URI as the client saw it.
    pub uri: String,
    /// The request-digest, lowercase hex.
    pub response: String,
    /// Hash algorithm; `MD5` when the parameter is absent (RFC 3261 §22.4).
    pub algorithm: Algorithm,
    /// Client nonce; present exactly when `qop` is.
    pub cnonce: Option<String>,
    /// Nonce count; present exactly when `qop` is.
    pub nc: Option<u32>,
    /// The quality of protection chosen; `None` is the RFC 2069 form.
    pub qop: Option<Qop>,
    /// Echo of the challenge's `opaque`.
    pub opaque: Option<String>,
}

/// Parameters this module interprets; the index is the bit in `SeenParams`.
const KNOWN: [&str; 10] = [
    "username",
    "realm",
    "nonce",
    "uri",
    "response",
    "algorithm",
    "cnonce",
    "nc",
    "qop",
    "opaque",
];

impl Credentials {
    /// Renders the header value. String parameters are quoted; `algorithm`,
    /// `qop` and `nc` are tokens (RFC 2617 §3.2.2; RFC 8760 §2.3 examples).
    pub fn to_header_value(&self) -> String {
        let mut w = HeaderWriter::new();
        w.quoted("username", &self.username);
        w.quoted("realm", &self.realm);
        w.quoted("nonce", &self.nonce);
        w.quoted("uri", &self.uri);
        w.quoted("response", &self.response);
        w.token("algorithm", self.algorithm.as_str());
        if let Some(cnonce) = &self.cnonce {
            w.quoted("cnonce", cnonce);
        }
        if let Some(opaque) = &self.opaque {
            w.quoted("opaque", opaque);
        }
        if let Some(qop) = self.qop {
            w.token("qop", qop.as_str());
        }
        if let Some(nc) = self.nc {
            let hex = nonce_count_hex(nc);
            w.token("nc", std::str::from_utf8(&hex).unwrap_or_default());
        }
        w.finish()
    }

    /// Parses credentials received from a client.
    ///
    /// Tolerant of LWS, case of names, parameter order and quoting style;
    /// unknown parameters are ignored. Refused: another scheme, syntax errors,
    /// repeated parameters, a missing `username`/`realm`/`nonce`/`uri`/
    /// `response`, an unknown `algorithm` or `qop`, an `nc` that is not
    /// exactly 8 lowercase hex digits, `qop` without `cnonce`/`nc`, and
    /// `cnonce`/`nc` without `qop` (RFC 2617 §3.2.2 MUST/MUST NOT).
    pub fn parse(value: &str) -> Result<Credentials, AuthError> {
        let mut seen = SeenParams::new();
        let mut fields: [Option<String>; 5] = Default::default();
        let mut algorithm = Algorithm::Md5;
        let mut cnonce = None;
        let mut nc = None;
        let mut qop = None;
        let mut opaque = None;
        for param in digest_params(value)? {
            let (name, value) = param?;
            let Some(index) = KNOWN.iter().position(|k| k.eq_ignore_ascii_case(name)) else {
                seen.unknown(name)?;
                continue;
            };
            seen.known(index, name)?;
            match index {
                0..=4 => fields[index] = Some(value.into_owned()),
                5 => algorithm = value.parse()?,
                6 => cnonce = Some(value.into_owned()),
                7 => nc = Some(parse_nonce_count(&value)?),
                8 => qop = Some(value.parse()?),
                _ => opaque = Some(value.into_owned()),
            }
        }
        let [username, realm, nonce, uri, response] = fields;
        if qop.is_some() {
            if cnonce.is_none() {
                return Err(Malformed::MissingParam("cnonce").into());
            }
            if nc.is_none() {
                return Err(Malformed::MissingParam("nc").into());
            }
        } else if cnonce.is_some() {
            return Err(Malformed::UnexpectedWithoutQop("cnonce").into());
        } else if nc.is_some() {
            return Err(Malformed::UnexpectedWithoutQop("nc").into());
        }
        Ok(Credentials {
            username: username.ok_or(Malformed::MissingParam("username"))?,
            realm: realm.ok_or(Malformed::MissingParam("realm"))?,
            nonce: nonce.ok_or(Malformed::MissingParam("nonce"))?,
            uri: uri.ok_or(Malformed::MissingParam("uri"))?,
            response: response.ok_or(Malformed::MissingParam("response"))?,
            algorithm,
            cnonce,
            nc,
            qop,
            opaque,
        })
    }

    /// Whether the `digest-uri` designates `request_uri`, the Request-URI of
    /// the request carrying these credentials (RFC 2617 §3.2.2.5; RFC 7616
    /// §3.4.6).
    ///
    /// The comparison is exact, byte for byte. The digest is computed over
    /// the uri string as sent, and clients copy the Request-URI verbatim, so
    /// exactness rejects nothing legitimate in practice; full SIP-URI
    /// equivalence (RFC 3261 §19.1.4) would need the message layer's URI
    /// parser, and a caller that wants it can compare parsed URIs instead.
    pub fn uri_matches(&self, request_uri: &str) -> bool {
        self.uri == request_uri
    }
}

/// `nc-value = 8LHEX` (RFC 2617 §3.2.2). Uppercase is refused rather than
/// folded: the digest covers the string as the client sent it, and we
/// recompute it from the number in lowercase.
fn parse_nonce_count(value: &str) -> Result<u32, AuthError> {
    let b = value.as_bytes();
    if b.len() != 8 || !b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(Malformed::InvalidNonceCount.into());
    }
    u32::from_str_radix(value, 16).map_err(|_| Malformed::InvalidNonceCount.into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const RFC2617: &str = "Digest username=\"Mufasa\",\r\n realm=\"testrealm@host.com\",\r\n \
        nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\r\n uri=\"/dir/index.html\",\r\n \
        qop=auth,\r\n nc=00000001,\r\n cnonce=\"0a4f113b\",\r\n \
        response=\"6629fae49393a05397450978507c4ef1\",\r\n \
        opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";

    fn rfc2617() -> Credentials {
        Credentials {
            username: "Mufasa".into(),
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            uri: "/dir/index.html".into(),
            response: "6629fae49393a05397450978507c4ef1".into(),
            algorithm: Algorithm::Md5,
            cnonce: Some("0a4f113b".into()),
            nc: Some(1),
            qop: Some(Qop::Auth),
            opaque: Some("5ccc069c403ebaf9f0171e9517f40e41".into()),
        }
    }

    /// Replaces `param=value` in the RFC example, or removes it with `None`.
    fn variant(param: &str, replacement: Option<&str>) -> String {
        let start = RFC2617.find(&format!("{param}=")).unwrap();
        let end = RFC2617[start..]
            .find(",\r\n")
            .map_or(RFC2617.len(), |e| start + e + 3);
        let mut s = String::from(&RFC2617[..start]);
        if let Some(r) = replacement {
            s.push_str(r);
            s.push_str(",\r\n ");
        }
        s.push_str(&RFC2617[end..]);
        s.trim_end_matches([',', '\r', '\n', ' ']).to_owned()
    }

    #[test]
    fn parses_rfc_2617_example() {
        assert_eq!(Credentials::parse(RFC2617).unwrap(), rfc2617());
    }

    #[test]
    fn prints_tokens_unquoted_and_strings_quoted() {
        assert_eq!(
            rfc2617().to_header_value(),
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, \
             cnonce=\"0a4f113b\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\", \
             qop=auth, nc=00000001"
        );
    }

    #[test]
    fn accepts_quoted_tokens_and_any_case_names() {
        let c = Credentials::parse(
            r#"DIGEST USERNAME="bob", Realm=sb, NONCE="n", Uri="sip:sb.example", RESPONSE="ab", ALGORITHM="sha-256", QOP="AUTH", NC="0000000a", CNONCE=c1, X-Foo=bar"#,
        )
        .unwrap();
        assert_eq!(c.username, "bob");
        assert_eq!(c.realm, "sb");
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!(c.qop, Some(Qop::Auth));
        assert_eq!(c.nc, Some(10));
        assert_eq!(c.cnonce.as_deref(), Some("c1"));
    }

    #[test]
    fn legacy_form_without_qop() {
        let c = Credentials::parse(
            r#"Digest username="u", realm="r", nonce="n", uri="sip:x", response="00""#,
        )
        .unwrap();
        assert_eq!(c.qop, None);
        assert_eq!(c.cnonce, None);
        assert_eq!(c.nc, None);
        assert_eq!(c.algorithm, Algorithm::Md5);
    }

    #[test]
    fn unescapes_username() {
        let c = Credentials::parse(
            r#"Digest username="a\"b\\c", realm="r", nonce="n", uri="sip:x", response="00""#,
        )
        .unwrap();
        assert_eq!(c.username, r#"a"b\c"#);
        assert_eq!(Credentials::parse(&c.to_header_value()).unwrap(), c);
    }

    #[test]
    fn rejects_missing_required_params() {
        for p in ["username", "realm", "nonce", "uri", "response"] {
            assert_eq!(
                Credentials::parse(&variant(p, None)),
                Err(Malformed::MissingParam(p).into()),
                "{p}"
            );
        }
        assert_eq!(
            Credentials::parse(&variant("cnonce", None)),
            Err(Malformed::MissingParam("cnonce").into())
        );
        assert_eq!(
            Credentials::parse(&variant("nc", None)),
            Err(Malformed::MissingParam("nc").into())
        );
    }

    #[test]
    fn rejects_cnonce_or_nc_without_qop() {
        let no_qop = variant("qop", None);
        assert_eq!(
            Credentials::parse(&no_qop),
            Err(Malformed::UnexpectedWithoutQop("cnonce").into())
        );
        let no_qop_no_cnonce = no_qop.replace("cnonce=\"0a4f113b\",", "");
        assert_eq!(
            Credentials::parse(&no_qop_no_cnonce),
            Err(Malformed::UnexpectedWithoutQop("nc").into())
        );
    }

    #[test]
    fn rejects_duplicates() {
        let dup = format!("{RFC2617}, USERNAME=\"other\"");
        assert_eq!(
            Credentials::parse(&dup),
            Err(Malformed::DuplicateParam("username".into()).into())
        );
        let dup_unknown = format!("{RFC2617}, x=1, X=2");
        assert_eq!(
            Credentials::parse(&dup_unknown),
            Err(Malformed::DuplicateParam("x".into()).into())
        );
    }

    #[test]
    fn rejects_bad_nonce_counts() {
        for nc in [
            "1",
            "0000001",
            "000000001",
            "0000000A",
            "0000000g",
            "+0000001",
            "\"0000 001\"",
            "ffffffff0",
        ] {
            assert_eq!(
                Credentials::parse(&variant("nc", Some(&format!("nc={nc}")))),
                Err(Malformed::InvalidNonceCount.into()),
                "{nc}"
            );
        }
        let max = Credentials::parse(&variant("nc", Some("nc=ffffffff"))).unwrap();
        assert_eq!(max.nc, Some(u32::MAX));
    }

    #[test]
    fn rejects_unknown_algorithm_and_qop() {
        assert_eq!(
            Credentials::parse(&variant("qop", Some("qop=auth-conf"))),
            Err(AuthError::UnsupportedQop("auth-conf".into()))
        );
        assert_eq!(
            Credentials::parse(&format!("{RFC2617}, algorithm=SHA-512-256")),
            Err(AuthError::UnsupportedAlgorithm("SHA-512-256".into()))
        );
    }

    #[test]
    fn rejects_other_schemes_and_bad_syntax() {
        assert_eq!(
            Credentials::parse("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
            Err(AuthError::UnsupportedScheme)
        );
        assert!(matches!(
            Credentials::parse(&variant("opaque", Some("opaque=\"5ccc"))),
            Err(AuthError::Malformed(Malformed::UnterminatedQuote { .. }))
        ));
        assert!(matches!(
            Credentials::parse(&variant("uri", Some("uri=\"/dir\\\n\""))),
            Err(AuthError::Malformed(Malformed::InvalidEscape { .. }))
        ));
    }

    #[test]
    fn uri_match_is_exact() {
        let c = rfc2617();
        assert!(c.uri_matches("/dir/index.html"));
        assert!(!c.uri_matches("/dir/index.html "));
        assert!(!c.uri_matches("/DIR/index.html"));
        assert!(!c.uri_matches("/dir/other.html"));
    }

    fn arb_text() -> impl Strategy<Value = String> {
        // Anything a quoted-string can carry: all of Unicode except CR/LF.
        "[^\r\n]{0,24}"
    }

    prop_compose! {
        fn arb_credentials()(
            username in arb_text(),
            realm in arb_text(),
            nonce in arb_text(),
            uri in arb_text(),
            response in "[0-9a-f]{0,64}",
            algorithm in prop_oneof![Just(Algorithm::Md5), Just(Algorithm::Sha256)],
            qop in proptest::option::of((
                prop_oneof![Just(Qop::Auth), Just(Qop::AuthInt)],
                arb_text(),
                any::<u32>(),
            )),
            opaque in proptest::option::of(arb_text()),
        ) -> Credentials {
            let (qop, cnonce, nc) = match qop {
                Some((q, c, n)) => (Some(q), Some(c), Some(n)),
                None => (None, None, None),
            };
            Credentials { username, realm, nonce, uri, response, algorithm, cnonce, nc, qop, opaque }
        }
    }

    proptest! {
        #[test]
        fn parse_print_round_trip(c in arb_credentials()) {
            prop_assert_eq!(Credentials::parse(&c.to_header_value()), Ok(c));
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = Credentials::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_near_misses(
            s in r#"(Digest|digest|Basic)?[ \t\r\n]*([a-z]{1,8}[ ]?=?[ ]?("([^"\\]|\\.)*"?|[a-zA-Z0-9@:;=.-]*)[ ]?,?)*"#
        ) {
            let _ = Credentials::parse(&s);
        }

        #[test]
        fn mangled_valid_headers_never_panic(cut in 0usize..300, junk in "[\"\\\\,= \r\n\0é]{0,3}") {
            let mut s = rfc2617().to_header_value();
            let mut at = cut.min(s.len());
            while !s.is_char_boundary(at) {
                at -= 1;
            }
            s.insert_str(at, &junk);
            let _ = Credentials::parse(&s);
        }
    }
}
