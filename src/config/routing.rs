//! Where calls go: route targets (`"queue:sales"`, `"ivr:main"`, ...), prompt
//! names, and the dial plan that maps a dialled number to a route.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::types::{AgentId, IvrName, NameError, QueueName};

/// A sound the configuration names: either a name looked up as
/// `<media.sounds_dir>/<name>.wav` (`"welcome"`), or a path ending in `.wav`
/// used as it is (the rule of `test_extensions[].prompt`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PromptName(String);

/// Why a piece of text is not a valid [`PromptName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptNameError {
    #[error("must not be empty")]
    Empty,
    #[error("must not contain control character {0:?}")]
    ControlChar(char),
}

impl PromptName {
    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file this name stands for.
    pub fn path(&self, sounds_dir: &Path) -> PathBuf {
        if self.0.ends_with(".wav") {
            PathBuf::from(&self.0)
        } else {
            sounds_dir.join(format!("{}.wav", self.0))
        }
    }
}

impl FromStr for PromptName {
    type Err = PromptNameError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err(PromptNameError::Empty);
        }
        if let Some(c) = text.chars().find(|c| c.is_control()) {
            return Err(PromptNameError::ControlChar(c));
        }
        Ok(Self(text.to_owned()))
    }
}

impl fmt::Display for PromptName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a call is sent: the target of a DID or extension, an IVR choice,
/// an IVR's default, a queue's overflow. Written `"queue:<name>"`,
/// `"ivr:<name>"`, `"agent:<id>"`, `"message:<prompt>"` or `"hangup"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Route {
    /// Wait in this queue for an agent.
    Queue(QueueName),
    /// Hear this IVR menu.
    Ivr(IvrName),
    /// Ring this agent directly.
    Agent(AgentId),
    /// Hear this prompt once, then the call is hung up.
    Message(PromptName),
    /// Hang up (BYE, or a final response when not yet answered).
    Hangup,
}

/// Why a piece of text is not a valid [`Route`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No known `kind:` prefix.
    #[error(
        "{0:?} is not a route: use \"queue:<name>\", \"ivr:<name>\", \"agent:<id>\", \"message:<prompt>\" or \"hangup\""
    )]
    Kind(String),
    /// The queue, IVR or agent part is not a valid name.
    #[error("{kind} name: {source}")]
    Name {
        kind: &'static str,
        source: NameError,
    },
    /// The prompt of a `message:` route.
    #[error("message prompt: {0}")]
    Prompt(PromptNameError),
}

impl FromStr for Route {
    type Err = RouteError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "hangup" {
            return Ok(Route::Hangup);
        }
        let Some((kind, rest)) = text.split_once(':') else {
            return Err(RouteError::Kind(text.to_owned()));
        };
        let name = |kind: &'static str| move |source| RouteError::Name { kind, source };
        match kind {
            "queue" => rest.parse().map(Route::Queue).map_err(name("queue")),
            "ivr" => rest.parse().map(Route::Ivr).map_err(name("ivr")),
            "agent" => rest.parse().map(Route::Agent).map_err(name("agent")),
            "message" => rest.parse().map(Route::Message).map_err(RouteError::Prompt),
            _ => Err(RouteError::Kind(text.to_owned())),
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Queue(q) => write!(f, "queue:{q}"),
            Route::Ivr(i) => write!(f, "ivr:{i}"),
            Route::Agent(a) => write!(f, "agent:{a}"),
            Route::Message(p) => write!(f, "message:{p}"),
            Route::Hangup => f.write_str("hangup"),
        }
    }
}

/// The numbers this server answers and where each goes: agent ids, queue
/// and IVR extensions, queue and IVR DIDs. Built (and checked for numbers
/// claimed twice) by the configuration's validation.
///
/// DIDs match with or without their leading `+`: carriers differ in whether
/// they send `+15550100` or `15550100` in the Request-URI, so a DID written
/// either way in the file answers to both forms. Extensions and agent ids
/// match exactly (case-sensitively, as SIP compares user parts). Because the
/// validation refuses a DID whose digits equal an extension or agent id,
/// every dialled string has at most one meaning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialPlan {
    /// Agent ids and extensions, as written.
    numbers: HashMap<String, Route>,
    /// DIDs, keyed by their digits without the `+`.
    dids: HashMap<String, Route>,
}

impl DialPlan {
    /// Where a call to `dialled` (the Request-URI user part, already
    /// unescaped) goes, if anywhere.
    pub fn route(&self, dialled: &str) -> Option<Route> {
        match dialled.strip_prefix('+') {
            Some(digits) => self.dids.get(digits),
            None => self.numbers.get(dialled).or_else(|| self.dids.get(dialled)),
        }
        .cloned()
    }

    /// The key a number is stored under, shared by both maps so that one
    /// claims table finds every collision.
    pub(super) fn did_key(did: &str) -> &str {
        did.strip_prefix('+').unwrap_or(did)
    }

    pub(super) fn insert_number(&mut self, number: String, route: Route) {
        self.numbers.insert(number, route);
    }

    pub(super) fn insert_did(&mut self, did: &str, route: Route) {
        self.dids.insert(Self::did_key(did).to_owned(), route);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn routes_parse_and_print_back() -> TestResult {
        for text in [
            "queue:support",
            "ivr:main-menu",
            "agent:1001",
            "message:all-agents-busy",
            "message:/srv/sounds/closed.wav",
            "hangup",
        ] {
            assert_eq!(text.parse::<Route>()?.to_string(), text);
        }
        assert_eq!(
            "queue:sales".parse::<Route>()?,
            Route::Queue("sales".parse()?)
        );
        assert_eq!(
            "agent:1003".parse::<Route>()?,
            Route::Agent("1003".parse()?)
        );
        Ok(())
    }

    #[test]
    fn bad_routes_say_why() {
        assert!(matches!(
            "voicemail:1001".parse::<Route>(),
            Err(RouteError::Kind(_))
        ));
        assert!(matches!(
            "support".parse::<Route>(),
            Err(RouteError::Kind(_))
        ));
        assert!(matches!(
            "hangup:now".parse::<Route>(),
            Err(RouteError::Kind(_))
        ));
        assert!(matches!(
            "queue:".parse::<Route>(),
            Err(RouteError::Name {
                kind: "queue",
                source: NameError::Empty
            })
        ));
        assert!(matches!(
            "agent:10-01".parse::<Route>(),
            Err(RouteError::Name { kind: "agent", .. })
        ));
        assert_eq!(
            "message:".parse::<Route>(),
            Err(RouteError::Prompt(PromptNameError::Empty))
        );
        let shown = "nowhere".parse::<Route>().map_err(|e| e.to_string());
        assert!(shown.is_err_and(|e| e.contains("\"queue:<name>\"")));
    }

    #[test]
    fn prompt_names_resolve_in_the_sounds_dir_unless_a_wav_path() -> TestResult {
        let dir = Path::new("/snd");
        assert_eq!(
            "welcome".parse::<PromptName>()?.path(dir),
            Path::new("/snd/welcome.wav")
        );
        assert_eq!(
            "/x/y.wav".parse::<PromptName>()?.path(dir),
            Path::new("/x/y.wav")
        );
        assert_eq!("".parse::<PromptName>(), Err(PromptNameError::Empty));
        assert_eq!(
            "a\nb".parse::<PromptName>(),
            Err(PromptNameError::ControlChar('\n'))
        );
        Ok(())
    }

    #[test]
    fn dids_match_with_and_without_plus_extensions_exactly() -> TestResult {
        let mut plan = DialPlan::default();
        let support = Route::Queue("support".parse()?);
        let menu = Route::Ivr("main".parse()?);
        plan.insert_did("+15550100", support.clone());
        plan.insert_did("15550101", menu.clone());
        plan.insert_number("500".to_owned(), support.clone());
        assert_eq!(plan.route("+15550100"), Some(support.clone()));
        assert_eq!(plan.route("15550100"), Some(support.clone()));
        assert_eq!(plan.route("+15550101"), Some(menu.clone()));
        assert_eq!(plan.route("15550101"), Some(menu));
        assert_eq!(plan.route("500"), Some(support));
        // A '+' marks a DID: it never reaches an extension.
        assert_eq!(plan.route("+500"), None);
        assert_eq!(plan.route("501"), None);
        assert_eq!(plan.route(""), None);
        Ok(())
    }
}
