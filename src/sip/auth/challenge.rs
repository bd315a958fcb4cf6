//! A digest challenge: the value of `WWW-Authenticate` (401) or
//! `Proxy-Authenticate` (407), RFC 3261 §22.2-22.3, §25.1 `digest-cln`;
//! RFC 7616 §3.3.

use super::digest::{Algorithm, Qop};
use super::error::{AuthError, Malformed};
use super::params::{digest_params, HeaderWriter, SeenParams};

/// A `Digest` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Protection space; shown to users and part of HA1.
    pub realm: String,
    /// Server nonce.
    pub nonce: String,
    /// Opaque data the client must echo back unchanged.
    pub opaque: Option<String>,
    /// Hash algorithm; `MD5` when the parameter is absent (RFC 3261 §22.4).
    pub algorithm: Algorithm,
    /// Offered qop values in the order listed. Empty means no `qop` directive
    /// (the RFC 2069 form, answered without cnonce/nc).
    pub qop: Vec<Qop>,
    /// The previous request was refused only because its nonce was stale:
    /// retry with this nonce without re-prompting the user.
    pub stale: bool,
}

/// Parameters this module interprets; the index is the bit in `SeenParams`.
const KNOWN: [&str; 6] = ["realm", "nonce", "opaque", "algorithm", "qop", "stale"];

impl Challenge {
    /// Renders the header value, e.g.
    /// `Digest realm="sb", nonce="…", algorithm=MD5, qop="auth", stale=TRUE`.
    /// `qop` is a quoted list in challenges (RFC 2617 §3.2.1 `qop-options`);
    /// `stale` is only written when true.
    pub fn to_header_value(&self) -> String {
        let mut w = HeaderWriter::new();
        w.quoted("realm", &self.realm);
        w.quoted("nonce", &self.nonce);
        if let Some(opaque) = &self.opaque {
            w.quoted("opaque", opaque);
        }
        w.token("algorithm", self.algorithm.as_str());
        if !self.qop.is_empty() {
            let list: Vec<&str> = self.qop.iter().map(|q| q.as_str()).collect();
            w.quoted("qop", &list.join(","));
        }
        if self.stale {
            w.token("stale", "TRUE");
        }
        w.finish()
    }

    /// Parses a challenge received from a server (a carrier, when we register
    /// a trunk). Parameter names and the scheme are case-insensitive, order is
    /// free, values may be tokens or quoted strings, and parameters we do not
    /// use (`domain`, `charset`, `userhash`, extensions) are ignored; repeated
    /// parameters are refused.
    pub fn parse(value: &str) -> Result<Challenge, AuthError> {
        let mut seen = SeenParams::new();
        let mut realm = None;
        let mut nonce = None;
        let mut opaque = None;
        let mut algorithm = Algorithm::Md5;
        let mut qop = Vec::new();
        let mut stale = false;
        for param in digest_params(value)? {
            let (name, value) = param?;
            let Some(index) = KNOWN.iter().position(|k| k.eq_ignore_ascii_case(name)) else {
                seen.unknown(name)?;
                continue;
            };
            seen.known(index, name)?;
            match index {
                0 => realm = Some(value.into_owned()),
                1 => nonce = Some(value.into_owned()),
                2 => opaque = Some(value.into_owned()),
                3 => algorithm = value.parse()?,
                4 => qop = parse_qop_options(&value)?,
                // RFC 2617 §3.2.1: anything other than TRUE means false.
                _ => stale = value.eq_ignore_ascii_case("true"),
            }
        }
        Ok(Challenge {
            realm: realm.ok_or(Malformed::MissingParam("realm"))?,
            nonce: nonce.ok_or(Malformed::MissingParam("nonce"))?,
            opaque,
            algorithm,
            qop,
            stale,
        })
    }
}

/// `qop-options = "qop" EQUAL LDQUOT qop-value *("," qop-value) RDQUOT`.
/// Unknown values are skipped (RFC 2617 §3.2.1: unrecognised options MUST be
/// ignored), but a list with nothing we know cannot be answered.
fn parse_qop_options(list: &str) -> Result<Vec<Qop>, AuthError> {
    let mut out = Vec::with_capacity(2);
    for item in list.split(',') {
        if let Ok(q) = item.trim_matches([' ', '\t']).parse::<Qop>() {
            if !out.contains(&q) {
                out.push(q);
            }
        }
    }
    if out.is_empty() {
        return Err(AuthError::UnsupportedQop(list.to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sample() -> Challenge {
        Challenge {
            realm: "switchboard".into(),
            nonce: "abc-_123".into(),
            opaque: None,
            algorithm: Algorithm::Sha256,
            qop: vec![Qop::Auth],
            stale: true,
        }
    }

    #[test]
    fn renders_the_documented_form() {
        assert_eq!(
            sample().to_header_value(),
            r#"Digest realm="switchboard", nonce="abc-_123", algorithm=SHA-256, qop="auth", stale=TRUE"#
        );
        let fresh = Challenge {
            stale: false,
            algorithm: Algorithm::Md5,
            opaque: Some("op".into()),
            ..sample()
        };
        assert_eq!(
            fresh.to_header_value(),
            r#"Digest realm="switchboard", nonce="abc-_123", opaque="op", algorithm=MD5, qop="auth""#
        );
    }

    #[test]
    fn parses_rfc_2617_example() {
        // RFC 2617 §3.5 (the URL-style realm is irrelevant to parsing).
        let c = Challenge::parse(
            "Digest\r\n realm=\"testrealm@host.com\",\r\n qop=\"auth,auth-int\",\r\n \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\r\n \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge {
                realm: "testrealm@host.com".into(),
                nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
                opaque: Some("5ccc069c403ebaf9f0171e9517f40e41".into()),
                algorithm: Algorithm::Md5,
                qop: vec![Qop::Auth, Qop::AuthInt],
                stale: false,
            }
        );
    }

    #[test]
    fn tolerant_of_case_order_tokens_and_unknown_params() {
        let c = Challenge::parse(
            "dIgEsT STALE=true ,QOP=auth, Nonce=n1, domain=\"sip:a sip:b\", \
             ALGORITHM=sha-256,Realm=carrier.example,x-ext=\"1\"",
        )
        .unwrap();
        assert_eq!(c.realm, "carrier.example");
        assert_eq!(c.nonce, "n1");
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!(c.qop, vec![Qop::Auth]);
        assert!(c.stale);
        assert_eq!(c.opaque, None);
    }

    #[test]
    fn absent_qop_is_the_legacy_form() {
        let c = Challenge::parse(r#"Digest realm="r", nonce="n""#).unwrap();
        assert!(c.qop.is_empty());
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert!(!c.stale);
    }

    #[test]
    fn qop_list_skips_unknown_and_duplicate_values() {
        let c = Challenge::parse(
            r#"Digest realm="r", nonce="n", qop=" auth-conf , auth-int,auth,auth""#,
        )
        .unwrap();
        assert_eq!(c.qop, vec![Qop::AuthInt, Qop::Auth]);
        assert_eq!(
            Challenge::parse(r#"Digest realm="r", nonce="n", qop="auth-conf""#),
            Err(AuthError::UnsupportedQop("auth-conf".into()))
        );
    }

    #[test]
    fn stale_other_than_true_is_false() {
        for v in ["FALSE", "false", "yes", "\"true \""] {
            let c =
                Challenge::parse(&format!(r#"Digest realm="r", nonce="n", stale={v}"#)).unwrap();
            assert!(!c.stale, "{v}");
        }
        let c = Challenge::parse(r#"Digest realm="r", nonce="n", stale="True""#).unwrap();
        assert!(c.stale);
    }

    #[test]
    fn rejects_bad_challenges() {
        assert_eq!(
            Challenge::parse(r#"Digest nonce="n""#),
            Err(Malformed::MissingParam("realm").into())
        );
        assert_eq!(
            Challenge::parse(r#"Digest realm="r""#),
            Err(Malformed::MissingParam("nonce").into())
        );
        assert_eq!(
            Challenge::parse(r#"Digest realm="r", nonce="n", Realm="s""#),
            Err(Malformed::DuplicateParam("realm".into()).into())
        );
        assert_eq!(
            Challenge::parse(r#"Digest realm="r", nonce="n", domain="a", DOMAIN="b""#),
            Err(Malformed::DuplicateParam("domain".into()).into())
        );
        assert_eq!(
            Challenge::parse(r#"Digest realm="r", nonce="n", algorithm=MD5-sess"#),
            Err(AuthError::UnsupportedAlgorithm("MD5-sess".into()))
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="r""#),
            Err(AuthError::UnsupportedScheme)
        );
        assert_eq!(
            Challenge::parse(r#"Digest realm="r, nonce="n""#),
            Err(Malformed::ExpectedComma { at: 24 }.into())
        );
    }

    fn arb_text() -> impl Strategy<Value = String> {
        // Anything a quoted-string can carry: all of Unicode except CR/LF.
        "[^\r\n]{0,24}"
    }

    fn arb_challenge() -> impl Strategy<Value = Challenge> {
        (
            arb_text(),
            arb_text(),
            proptest::option::of(arb_text()),
            prop_oneof![Just(Algorithm::Md5), Just(Algorithm::Sha256)],
            prop_oneof![
                Just(vec![]),
                Just(vec![Qop::Auth]),
                Just(vec![Qop::AuthInt]),
                Just(vec![Qop::Auth, Qop::AuthInt]),
                Just(vec![Qop::AuthInt, Qop::Auth]),
            ],
            any::<bool>(),
        )
            .prop_map(|(realm, nonce, opaque, algorithm, qop, stale)| Challenge {
                realm,
                nonce,
                opaque,
                algorithm,
                qop,
                stale,
            })
    }

    proptest! {
        #[test]
        fn parse_print_round_trip(c in arb_challenge()) {
            prop_assert_eq!(Challenge::parse(&c.to_header_value()), Ok(c));
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = Challenge::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_near_misses(
            s in r#"(Digest|digest|Basic)?[ \t\r\n]*([a-z]{1,6}[ ]?=?[ ]?("([^"\\]|\\.)*"?|[a-zA-Z0-9@:;=.-]*)[ ]?,?)*"#
        ) {
            let _ = Challenge::parse(&s);
        }
    }
}
