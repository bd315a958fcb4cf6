//! What one trunk registration needs, and how it follows from a trunk's
//! `[trunks.register]` section.

use std::fmt::Write as _;
use std::time::Duration;

use thiserror::Error;

use crate::config::{Secret, TrunkName, TrunkRegistration as RegisterSection};
use crate::sip::message::{CallId, NameAddr, SipUri, SyntaxError, Uri, Via};

/// The fixed inputs of a [`TrunkRegistration`](super::TrunkRegistration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationConfig {
    /// The trunk's name; carried in events so that log lines name the trunk.
    pub trunk: String,
    /// The Request-URI of every REGISTER: the registrar (RFC 3261 §10.2).
    pub registrar: SipUri,
    /// The address-of-record registered, in To and From (RFC 3261 §10.2).
    pub aor: SipUri,
    /// Our Contact: where the carrier sends calls. An `expires` parameter is
    /// dropped: the lifetime is asked for in the Expires header.
    pub contact: NameAddr,
    /// The digest user name.
    pub auth_username: String,
    /// The digest password.
    pub password: Secret,
    /// The lifetime asked for; raised for good by a 423 (RFC 3261 §10.2.8).
    /// Zero is treated as one second: zero would remove the binding.
    pub expires: Duration,
    /// The Call-ID of every REGISTER of this registration (RFC 3261 §10.2:
    /// one Call-ID for all registrations to a registrar, so that it can
    /// detect a delayed REGISTER arriving out of order by its CSeq).
    pub call_id: CallId,
    /// The From tag, the same for the life of the registration.
    pub from_tag: String,
    /// Our Via for the REGISTERs: transport, sent-by and parameters such as
    /// `rport`. Its `branch` is replaced by a fresh one in every request
    /// (RFC 3261 §8.1.1.7).
    pub via: Via,
}

/// Why a `[trunks.register]` section cannot be turned into a registration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// The registrar does not parse as a URI.
    #[error("trunk {trunk}: registrar {uri:?} is not a valid URI: {error}")]
    InvalidRegistrar {
        trunk: String,
        uri: String,
        error: SyntaxError,
    },
    /// The registrar is a URI of another scheme (`tel:`...).
    #[error("trunk {trunk}: registrar {uri:?} is not a sip: or sips: URI")]
    NotSip { trunk: String, uri: String },
}

impl RegistrationConfig {
    /// The registration of trunk `name` described by its `[trunks.register]`
    /// section. The endpoint supplies what depends on the network and on
    /// fresh identifiers: our `contact` and `via` on the flow towards the
    /// carrier, a random `call_id` and `from_tag`.
    ///
    /// The address-of-record is `username` at the registrar's host, in the
    /// registrar's scheme, without port or parameters: RFC 3261 §10.2 puts
    /// the AOR's domain in the Request-URI, and carriers match the To user
    /// and domain, not a port.
    pub fn from_trunk(
        name: &TrunkName,
        section: &RegisterSection,
        contact: NameAddr,
        via: Via,
        call_id: CallId,
        from_tag: String,
    ) -> Result<Self, ConfigError> {
        let registrar = match section.registrar.parse::<Uri>() {
            Ok(Uri::Sip(uri)) => uri,
            Ok(Uri::Other { .. }) => {
                return Err(ConfigError::NotSip {
                    trunk: name.to_string(),
                    uri: section.registrar.clone(),
                })
            }
            Err(error) => {
                return Err(ConfigError::InvalidRegistrar {
                    trunk: name.to_string(),
                    uri: section.registrar.clone(),
                    error,
                })
            }
        };
        let mut aor =
            SipUri::new(registrar.host.clone()).with_user(&escape_user(&section.username));
        aor.secure = registrar.secure;
        Ok(RegistrationConfig {
            trunk: name.to_string(),
            registrar,
            aor,
            contact,
            auth_username: section.auth_username.clone(),
            password: section.password.clone(),
            expires: section.expires,
            call_id,
            from_tag,
            via,
        })
    }
}

/// Escapes a configured user name for the user part of a SIP URI: bytes
/// outside `unreserved` and `user-unreserved` become `%HH` (RFC 3261
/// §19.1.2, §25.1), so that a name with `@` or a space still prints as a
/// valid URI.
fn escape_user(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for b in user.bytes() {
        let plain = b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b);
        if plain {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::sip::message::Host;

    fn section(registrar: &str, username: &str) -> RegisterSection {
        RegisterSection {
            username: username.into(),
            password: Secret::new("pw"),
            registrar: registrar.into(),
            expires: Duration::from_secs(600),
            auth_username: "auth-user".into(),
        }
    }

    fn build(registrar: &str, username: &str) -> Result<RegistrationConfig, ConfigError> {
        let contact = NameAddr::parse("<sip:gw@192.0.2.10:5060>").unwrap();
        let via = Via::new("UDP", Host::Ip([192, 0, 2, 10].into()), Some(5060), "x");
        RegistrationConfig::from_trunk(
            &"carrier".parse().unwrap(),
            &section(registrar, username),
            contact,
            via,
            CallId::new("c1@gw"),
            "tag1".into(),
        )
    }

    #[test]
    fn aor_is_user_at_registrar_host() {
        let c = build("sip:198.51.100.7:5080;transport=tcp", "4420").unwrap();
        assert_eq!(c.trunk, "carrier");
        assert_eq!(
            c.registrar.to_string(),
            "sip:198.51.100.7:5080;transport=tcp"
        );
        assert_eq!(c.aor.to_string(), "sip:4420@198.51.100.7");
        assert_eq!(c.auth_username, "auth-user");
        assert_eq!(c.password.expose(), "pw");
        assert_eq!(c.expires, Duration::from_secs(600));

        let c = build("sips:Sip.Carrier.example", "acme").unwrap();
        assert_eq!(c.aor.to_string(), "sips:acme@sip.carrier.example");
        let c = build("sip:[2001:db8::7]", "acme").unwrap();
        assert_eq!(c.aor.to_string(), "sip:acme@[2001:db8::7]");
    }

    #[test]
    fn user_part_is_escaped() {
        let c = build("sip:carrier.example", "a b@c;d").unwrap();
        assert_eq!(c.aor.to_string(), "sip:a%20b%40c;d@carrier.example");
        // What we print parses back to the same URI.
        assert_eq!(
            c.aor.to_string().parse::<Uri>(),
            Ok(Uri::Sip(c.aor.clone()))
        );
    }

    #[test]
    fn registrar_must_be_a_sip_uri() {
        assert!(matches!(
            build("tel:+15550100", "u"),
            Err(ConfigError::NotSip { .. })
        ));
        assert!(matches!(
            build("sip:bad host", "u"),
            Err(ConfigError::InvalidRegistrar { .. })
        ));
    }
}
