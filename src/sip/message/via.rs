//! The Via header (RFC 3261 §20.42, §18.2.1; RFC 3581 `rport`).

use std::fmt;
use std::net::IpAddr;

use super::error::SyntaxError;
use super::params::{ParamContext, Params};
use super::scan::{is_lws, is_token, trim_lws};
use super::uri::{split_host_port, Host};

/// RFC 3261 §8.1.1.7: branches of RFC 3261 transactions start with this.
pub const BRANCH_MAGIC: &str = "z9hG4bK";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Upper-cased transport token ("UDP", "TCP", "TLS", or an unknown one).
    pub transport: String,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    pub fn new(transport: &str, host: Host, port: Option<u16>, branch: &str) -> Self {
        let mut params = Params::new();
        params.set("branch", Some(branch.to_owned()));
        Via {
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params,
        }
    }

    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").flatten()
    }

    /// True when the branch carries the RFC 3261 magic cookie.
    pub fn is_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with(BRANCH_MAGIC))
    }

    pub fn received(&self) -> Option<IpAddr> {
        self.params
            .get("received")
            .flatten()
            .and_then(|r| r.parse().ok())
    }

    /// `Some(None)` when `rport` is present without a value (a request to
    /// fill it in, RFC 3581 §4).
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }

    pub fn parse(s: &str) -> Result<Via, SyntaxError> {
        let s = trim_lws(s);
        // sent-protocol = name SLASH version SLASH transport, SLASH = SWS "/" SWS
        let mut parts = s.splitn(3, '/');
        let name = trim_lws(parts.next().unwrap_or_default());
        let version = trim_lws(parts.next().ok_or(SyntaxError::Expected("'/'"))?);
        let rest = trim_lws(parts.next().ok_or(SyntaxError::Expected("'/'"))?);
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return Err(SyntaxError::Expected("SIP/2.0"));
        }
        let t_end = rest
            .find([' ', '\t'])
            .ok_or(SyntaxError::Expected("sent-by"))?;
        let transport = &rest[..t_end];
        if !is_token(transport) {
            return Err(SyntaxError::Expected("transport"));
        }
        let rest = trim_lws(&rest[t_end..]);
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (trim_lws(&rest[..i]), &rest[i..]),
            None => (rest, ""),
        };
        if sent_by.bytes().any(is_lws) {
            return Err(SyntaxError::Expected("sent-by"));
        }
        let (host, port) = split_host_port(sent_by)?;
        Ok(Via {
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params: Params::parse(params, ParamContext::Header)?,
        })
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spacing_and_params() {
        let v = Via::parse(
            "SIP  /  2.0  /  udp  192.0.2.2:5060 ; branch=z9hG4bKx;rport;received=192.0.2.9",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.branch(), Some("z9hG4bKx"));
        assert_eq!(v.rport(), Some(None));
        assert!(v.is_rfc3261_branch());
        assert_eq!(v.received(), "192.0.2.9".parse().ok());
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bKx;rport;received=192.0.2.9"
        );
        let v6 = Via::parse("SIP/2.0/TCP [2001:db8::9]:5061;branch=z9hG4bK1")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            v6.to_string(),
            "SIP/2.0/TCP [2001:db8::9]:5061;branch=z9hG4bK1"
        );
    }

    #[test]
    fn rejects_empty_params_and_bad_protocol() {
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;,;,,").is_err());
        assert!(Via::parse("SIP/3.0/UDP host").is_err());
        assert!(Via::parse("SIP/2.0/UDP").is_err());
    }
}
