//! The client side, used when Switchboard registers to a carrier trunk:
//! answer a challenge (RFC 3261 §22.2, RFC 2617 §3.2.2, RFC 8760).

use super::challenge::Challenge;
use super::credentials::Credentials;
use super::digest::{request_digest, Qop, QopAuth};
use super::error::AuthError;

/// Builds the credentials answering `challenge` for a request of `method` to
/// `uri` (the Request-URI, copied verbatim into `digest-uri`).
///
/// With a `qop` offer containing `auth`, answers with `qop=auth`, `cnonce`
/// and `nc` (which the caller increments for every request reusing the same
/// nonce, RFC 7616 §3.4; `cnonce` should be fresh and unpredictable). Without
/// a `qop` offer, answers in the RFC 2069 form and ignores `cnonce`/`nc`.
/// `opaque` is echoed (RFC 2617 §3.2.2).
///
/// Fails with [`AuthError::UnsupportedQop`] when the challenge offers `qop`
/// but not `auth` (we do not implement `auth-int`, which would need the
/// message body).
pub fn respond(
    challenge: &Challenge,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> Result<Credentials, AuthError> {
    let qop = if challenge.qop.is_empty() {
        None
    } else if challenge.qop.contains(&Qop::Auth) {
        Some(QopAuth { nc, cnonce })
    } else {
        let offered: Vec<&str> = challenge.qop.iter().map(|q| q.as_str()).collect();
        return Err(AuthError::UnsupportedQop(offered.join(",")));
    };
    let algorithm = challenge.algorithm;
    let ha1 = algorithm.hex_digest(&[
        username.as_bytes(),
        challenge.realm.as_bytes(),
        password.as_bytes(),
    ]);
    let response = request_digest(algorithm, &ha1, method, uri, &challenge.nonce, qop);
    Ok(Credentials {
        username: username.to_owned(),
        realm: challenge.realm.clone(),
        nonce: challenge.nonce.clone(),
        uri: uri.to_owned(),
        response: response.as_str().to_owned(),
        algorithm,
        cnonce: qop.map(|q| q.cnonce.to_owned()),
        nc: qop.map(|q| q.nc),
        qop: qop.map(|_| Qop::Auth),
        opaque: challenge.opaque.clone(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::sip::auth::digest::Algorithm;

    #[test]
    fn rfc_2617_example() {
        // RFC 2617 §3.5.
        let ch = Challenge::parse(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        let c = respond(
            &ch,
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle Of Life",
            "0a4f113b",
            1,
        )
        .unwrap();
        assert_eq!(c.response, "6629fae49393a05397450978507c4ef1");
        assert_eq!(c.qop, Some(Qop::Auth));
        assert_eq!(c.nc, Some(1));
        assert_eq!(c.cnonce.as_deref(), Some("0a4f113b"));
        assert_eq!(
            c.opaque.as_deref(),
            Some("5ccc069c403ebaf9f0171e9517f40e41")
        );
        assert_eq!(c.uri, "/dir/index.html");
        assert_eq!(c.username, "Mufasa");
    }

    /// RFC 7616 §3.9.1: the same request answered with SHA-256 and MD5.
    fn rfc_7616_challenge(algorithm: Algorithm) -> Challenge {
        Challenge {
            realm: "http-auth@example.org".into(),
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
            opaque: Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS".into()),
            algorithm,
            qop: vec![Qop::Auth, Qop::AuthInt],
            stale: false,
        }
    }

    fn rfc_7616_response(algorithm: Algorithm) -> String {
        respond(
            &rfc_7616_challenge(algorithm),
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle of Life",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            1,
        )
        .unwrap()
        .response
    }

    #[test]
    fn rfc_7616_sha256_example() {
        assert_eq!(
            rfc_7616_response(Algorithm::Sha256),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn rfc_7616_md5_example() {
        assert_eq!(
            rfc_7616_response(Algorithm::Md5),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
    }

    #[test]
    fn legacy_form_without_qop() {
        let ch = Challenge {
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            opaque: None,
            algorithm: Algorithm::Md5,
            qop: vec![],
            stale: false,
        };
        let c = respond(
            &ch,
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle Of Life",
            "x",
            7,
        )
        .unwrap();
        assert_eq!((c.qop, c.cnonce.as_deref(), c.nc), (None, None, None));
        // RFC 2069 §2.1.1: request-digest = KD(H(A1), nonce ":" H(A2)), with
        // the HA1 and HA2 that RFC 2617 §3.5 gives for this request.
        let expected = Algorithm::Md5.hex_digest(&[
            b"939e7578ed9e3c518a452acee763bce9",
            b"dcd98b7102dd2f0e8b11d0f600bfb0c093",
            b"39aff3a2bab6126f332b942af96d3366",
        ]);
        assert_eq!(c.response, expected.as_str());
        assert_eq!(
            Algorithm::Md5
                .hex_digest(&[b"GET", b"/dir/index.html"])
                .as_str(),
            "39aff3a2bab6126f332b942af96d3366"
        );
        // The header form has no qop, cnonce or nc and parses back.
        let header = c.to_header_value();
        assert!(
            !header.contains("qop") && !header.contains("nc="),
            "{header}"
        );
        assert_eq!(Credentials::parse(&header).unwrap(), c);
    }

    #[test]
    fn auth_int_only_is_refused() {
        let ch = Challenge {
            qop: vec![Qop::AuthInt],
            ..rfc_7616_challenge(Algorithm::Md5)
        };
        assert_eq!(
            respond(&ch, "GET", "/", "u", "p", "c", 1),
            Err(AuthError::UnsupportedQop("auth-int".into()))
        );
    }

    #[test]
    fn nonce_count_and_cnonce_change_the_response() {
        let ch = rfc_7616_challenge(Algorithm::Sha256);
        let a = respond(&ch, "REGISTER", "sip:x", "u", "p", "c", 1).unwrap();
        let b = respond(&ch, "REGISTER", "sip:x", "u", "p", "c", 2).unwrap();
        let c = respond(&ch, "REGISTER", "sip:x", "u", "p", "d", 1).unwrap();
        assert_ne!(a.response, b.response);
        assert_ne!(a.response, c.response);
        assert_eq!(a.response.len(), 64);
    }
}
