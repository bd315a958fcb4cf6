//! Newtypes for the identifiers and values that the configuration names.
//!
//! Each one can only be built through its `FromStr` implementation, so a value
//! of the type is proof that the text passed the rule documented on it. The
//! validation pass uses these parsers; other modules can use them too (for
//! example to turn the user part of a SIP URI into an [`AgentId`]).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Longest identifier accepted for agent ids, extensions, trunk and queue names.
pub const MAX_NAME_LEN: usize = 64;

/// Why a piece of text is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The text is empty.
    #[error("must not be empty")]
    Empty,
    /// The text is longer than [`MAX_NAME_LEN`] characters.
    #[error("must be at most {MAX_NAME_LEN} characters long")]
    TooLong,
    /// The text contains a character outside the allowed set.
    #[error("character {found:?} is not allowed ({allowed})")]
    BadChar {
        /// The first offending character.
        found: char,
        /// Human description of the allowed set.
        allowed: &'static str,
    },
}

/// Checks length and character set shared by all identifiers.
fn check_name(
    text: &str,
    allowed: fn(char) -> bool,
    allowed_desc: &'static str,
) -> Result<(), NameError> {
    if text.is_empty() {
        return Err(NameError::Empty);
    }
    if text.chars().count() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    match text.chars().find(|c| !allowed(*c)) {
        Some(found) => Err(NameError::BadChar {
            found,
            allowed: allowed_desc,
        }),
        None => Ok(()),
    }
}

/// Dialable identifiers end up as the user part of SIP URIs (RFC 3261 §19.1.1);
/// restricting them to ASCII letters and digits means they never need escaping
/// and compare the same way in every component.
fn is_dialable(c: char) -> bool {
    c.is_ascii_alphanumeric()
}
const DIALABLE_DESC: &str = "only ASCII letters and digits";

/// Names appear in logs, API paths and metrics labels, so they avoid spaces
/// and punctuation that would need quoting there.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}
const NAME_DESC: &str = "only ASCII letters, digits, '-', '_' and '.'";

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident, $check:expr, $desc:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = NameError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                check_name(text, $check, $desc)?;
                Ok(Self(text.to_owned()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_newtype!(
    /// An agent's id: its SIP user name and extension (`[[agents]] id`).
    /// 1 to 64 ASCII letters and digits; compared case-sensitively, as SIP
    /// compares user parts (RFC 3261 §19.1.4).
    AgentId,
    is_dialable,
    DIALABLE_DESC
);

string_newtype!(
    /// A queue's internal extension (`[[queues]] extension`). Same rule as
    /// [`AgentId`], since both are dialled the same way and share one namespace.
    Extension,
    is_dialable,
    DIALABLE_DESC
);

string_newtype!(
    /// A trunk's name (`[[trunks]] name`): 1 to 64 ASCII letters, digits,
    /// `-`, `_` or `.`.
    TrunkName,
    is_name_char,
    NAME_DESC
);

string_newtype!(
    /// A queue's name (`[[queues]] name`): 1 to 64 ASCII letters, digits,
    /// `-`, `_` or `.`.
    QueueName,
    is_name_char,
    NAME_DESC
);

string_newtype!(
    /// An IVR menu's name (`[[ivr]] name`): 1 to 64 ASCII letters, digits,
    /// `-`, `_` or `.`.
    IvrName,
    is_name_char,
    NAME_DESC
);

/// Most digits an E.164 number can have (ITU-T E.164 §6.1).
pub const MAX_DID_DIGITS: usize = 15;

/// Why a piece of text is not a valid [`Did`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DidError {
    /// No digits at all.
    #[error("must contain at least one digit")]
    Empty,
    /// More than [`MAX_DID_DIGITS`] digits.
    #[error("must have at most {MAX_DID_DIGITS} digits")]
    TooLong,
    /// Something other than an optional leading `+` and digits.
    #[error("must be an optional '+' followed by digits only, found {0:?}")]
    BadChar(char),
}

/// A phone number in E.164-like form: an optional leading `+` and 1 to 15
/// digits, without spaces or punctuation (`+15550100`). Used for DIDs and
/// caller ids; compared textually, so `+15550100` and `15550100` differ.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Did(String);

impl Did {
    /// The number as written, including any leading `+`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Did {
    type Err = DidError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits = text.strip_prefix('+').unwrap_or(text);
        if let Some(bad) = digits.chars().find(|c| !c.is_ascii_digit()) {
            return Err(DidError::BadChar(bad));
        }
        if digits.is_empty() {
            return Err(DidError::Empty);
        }
        if digits.len() > MAX_DID_DIGITS {
            return Err(DidError::TooLong);
        }
        Ok(Self(text.to_owned()))
    }
}

impl fmt::Display for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password or token. `Debug` does not print it, so a config dumped into a
/// log line does not leak credentials; read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret in clear, for the code that actually needs it (digest
    /// computation, token comparison).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Why a piece of text is not a valid [`IpNetwork`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpNetworkError {
    /// The address part does not parse as an IPv4 or IPv6 address.
    #[error("invalid IP address {0:?}")]
    Address(String),
    /// The prefix length is not a number or too long for the address family.
    #[error("invalid prefix length {0:?} (at most 32 for IPv4, 128 for IPv6)")]
    Prefix(String),
    /// Bits beyond the prefix are set; probably a typo for the network address.
    #[error("address has bits set beyond the /{prefix} prefix (did you mean {network}/{prefix}?)")]
    HostBits {
        /// The network address with the host bits cleared.
        network: IpAddr,
        /// The prefix length given.
        prefix: u8,
    },
}

/// An IP network in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`), or a
/// single address, which is stored as a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// The network holding exactly one address.
    pub fn host(addr: IpAddr) -> Self {
        let prefix = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        Self { addr, prefix }
    }

    /// The network address (host bits are always zero).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies inside this network. An IPv4 address never matches an
    /// IPv6 network or the reverse, except that an IPv4-mapped IPv6 address
    /// (`::ffff:192.0.2.1`, as seen on dual-stack sockets) is treated as the
    /// IPv4 address it carries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask_u32(self.prefix);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask_u128(self.prefix);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn mask_u32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_u128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for IpNetwork {
    type Err = IpNetworkError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| IpNetworkError::Address(addr_text.to_owned()))?;
        let Some(prefix_text) = prefix_text else {
            return Ok(Self::host(addr));
        };
        let max = Self::host(addr).prefix;
        let prefix = prefix_text
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| IpNetworkError::Prefix(prefix_text.to_owned()))?;
        let network = match addr {
            IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & mask_u32(prefix)).into()),
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & mask_u128(prefix)).into()),
        };
        if network != addr {
            return Err(IpNetworkError::HostBits { network, prefix });
        }
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_ids_are_letters_and_digits() {
        assert!("1001".parse::<AgentId>().is_ok());
        assert!("alice7".parse::<AgentId>().is_ok());
        assert_eq!("".parse::<AgentId>(), Err(NameError::Empty));
        assert!(matches!(
            "10 01".parse::<AgentId>(),
            Err(NameError::BadChar { found: ' ', .. })
        ));
        assert!(matches!(
            "bob@x".parse::<AgentId>(),
            Err(NameError::BadChar { found: '@', .. })
        ));
        let long = "1".repeat(MAX_NAME_LEN + 1);
        assert_eq!(long.parse::<AgentId>(), Err(NameError::TooLong));
    }

    #[test]
    fn names_allow_dash_underscore_dot() {
        assert!("carrier-eu_2.b".parse::<TrunkName>().is_ok());
        assert!("sales team".parse::<QueueName>().is_err());
    }

    #[test]
    fn dids() {
        assert_eq!(
            "+15550100".parse::<Did>().map(|d| d.to_string()),
            Ok("+15550100".to_owned())
        );
        assert!("15550100".parse::<Did>().is_ok());
        assert_eq!("+".parse::<Did>(), Err(DidError::Empty));
        assert_eq!("+1 555".parse::<Did>(), Err(DidError::BadChar(' ')));
        assert_eq!("++1".parse::<Did>(), Err(DidError::BadChar('+')));
        assert_eq!("+1234567890123456".parse::<Did>(), Err(DidError::TooLong));
        assert!("+123456789012345".parse::<Did>().is_ok());
    }

    #[test]
    fn secret_debug_hides_value() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn ip_network_parsing_and_membership() -> Result<(), Box<dyn std::error::Error>> {
        let net: IpNetwork = "10.1.0.0/16".parse()?;
        assert!(net.contains("10.1.200.3".parse()?));
        assert!(!net.contains([10, 2, 0, 1].into()));
        assert!(net.contains("::ffff:10.1.2.3".parse::<IpAddr>()?));

        let host: IpNetwork = "127.0.0.1".parse()?;
        assert_eq!(host.prefix(), 32);
        assert!(host.contains([127, 0, 0, 1].into()));
        assert!(!host.contains([127, 0, 0, 2].into()));

        let all: IpNetwork = "0.0.0.0/0".parse()?;
        assert!(all.contains([203, 0, 113, 9].into()));

        let v6: IpNetwork = "2001:db8::/32".parse()?;
        assert!(v6.contains("2001:db8:1::5".parse()?));
        assert!(!v6.contains([10, 0, 0, 1].into()));
        assert_eq!(v6.to_string(), "2001:db8::/32");
        Ok(())
    }

    #[test]
    fn ip_network_errors() {
        assert!(matches!(
            "10.0.0.1/8".parse::<IpNetwork>(),
            Err(IpNetworkError::HostBits { prefix: 8, .. })
        ));
        assert!(matches!(
            "10.0.0.0/33".parse::<IpNetwork>(),
            Err(IpNetworkError::Prefix(_))
        ));
        assert!(matches!(
            "10.0.0.0/x".parse::<IpNetwork>(),
            Err(IpNetworkError::Prefix(_))
        ));
        assert!(matches!(
            "example.com".parse::<IpNetwork>(),
            Err(IpNetworkError::Address(_))
        ));
    }
}

/// A feature code dialled from a phone (`*43`, `*21`): 1 to 16 of the keys
/// a keypad has, `0-9`, `*` and `#`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeatureCode(String);

impl FeatureCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a feature code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeatureCodeError {
    #[error("must be 1 to 16 characters")]
    Length,
    #[error("only the keypad keys 0-9, '*' and '#' are allowed")]
    Character,
}

impl FromStr for FeatureCode {
    type Err = FeatureCodeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() || text.len() > 16 {
            return Err(FeatureCodeError::Length);
        }
        if !text
            .chars()
            .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
        {
            return Err(FeatureCodeError::Character);
        }
        Ok(FeatureCode(text.to_owned()))
    }
}

impl fmt::Display for FeatureCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
