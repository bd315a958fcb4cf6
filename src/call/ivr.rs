//! An IVR menu ("for sales press 1, for support press 2") as a sans-IO
//! state machine, one per caller in the menu.
//!
//! The call layer feeds it the caller's keys ([`IvrSession::digit`]), the
//! end of each playlist it was asked to play ([`IvrSession::playback_done`])
//! and timeouts ([`IvrSession::handle_timeout`] at [`IvrSession::poll_timeout`]),
//! and carries out [`IvrSession::poll_output`]: play prompts, stop playing,
//! and finally route the call.
//!
//! Outputs name prompts ([`PromptName`]) rather than carrying audio: the
//! menu stays plain configuration, and the call layer finds each sound among
//! the prompts loaded at start under `config.media.prompt_path(&name)`
//! (every prompt of every menu is in `Config::prompt_paths`).
//!
//! Behaviour:
//! - the menu prompt plays; a key may interrupt it (barge-in);
//! - the key timeout (`timeout_secs`) starts when the prompt has finished;
//! - a key that is not an option plays `invalid_prompt` (if any) and the
//!   menu again; a timeout plays the menu again;
//! - each invalid key or timeout is a failed attempt; after `max_attempts`
//!   of them the call takes the menu's `default` route;
//! - a valid key takes its route at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{IvrMenu, PromptName, Route};

/// If the end of a playlist is never reported (an event lost between the
/// media worker and the call layer), the key timeout starts anyway after
/// this long, so a caller is never left in a menu that waits for nothing.
/// Longer than any menu prompt.
pub const PLAYBACK_GUARD: Duration = Duration::from_secs(120);

/// What the call layer must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Play these prompts once, in order, replacing whatever is playing;
    /// report the end with [`IvrSession::playback_done`].
    Play(Vec<PromptName>),
    /// Stop playing (a key interrupted the prompt): silence until the route
    /// is taken.
    StopPlayback,
    /// The menu is over: send the call here. Nothing follows.
    Route(Route),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A playlist is playing; keys barge in. `guard`: see [`PLAYBACK_GUARD`].
    Playing { guard: Instant },
    /// The prompt ended; waiting for a key until `deadline`.
    Waiting { deadline: Instant },
    /// A route was output.
    Done,
}

/// One caller in one menu.
#[derive(Debug)]
pub struct IvrSession {
    menu: Arc<IvrMenu>,
    state: State,
    /// Invalid keys and timeouts so far.
    failures: u32,
    outputs: VecDeque<Output>,
}

impl IvrSession {
    /// Enters the menu: its prompt starts.
    pub fn new(menu: Arc<IvrMenu>, now: Instant) -> Self {
        let mut session = IvrSession {
            state: State::Done,
            failures: 0,
            outputs: VecDeque::new(),
            menu,
        };
        session.play(now, Vec::new());
        session
    }

    /// The menu this session runs.
    pub fn menu(&self) -> &IvrMenu {
        &self.menu
    }

    /// Whether the route was output (later inputs are ignored).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The caller pressed `digit` (`0`-`9`, `*`, `#`, or `A`-`D`, which no
    /// option uses).
    pub fn digit(&mut self, now: Instant, digit: char) {
        let playing = match self.state {
            State::Done => return,
            State::Playing { .. } => true,
            State::Waiting { .. } => false,
        };
        match self.menu.options.get(&digit).cloned() {
            Some(route) => self.finish(playing, route),
            None => self.fail(now, playing, true),
        }
    }

    /// The playlist of the last [`Output::Play`] ended: the key timeout
    /// starts. Ignored unless a playlist is playing.
    pub fn playback_done(&mut self, now: Instant) {
        if let State::Playing { .. } = self.state {
            self.wait_for_key(now);
        }
    }

    /// Call at [`IvrSession::poll_timeout`] (earlier or later calls are
    /// harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Playing { guard } if now >= guard => self.wait_for_key(now),
            State::Waiting { deadline } if now >= deadline => self.fail(now, false, false),
            _ => {}
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`IvrSession::handle_timeout`] is next due; `None` once done.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Playing { guard } => Some(guard),
            State::Waiting { deadline } => Some(deadline),
            State::Done => None,
        }
    }

    /// Plays `before` then the menu prompt.
    fn play(&mut self, now: Instant, mut before: Vec<PromptName>) {
        before.push(self.menu.prompt.clone());
        self.outputs.push_back(Output::Play(before));
        self.state = State::Playing {
            guard: now + PLAYBACK_GUARD,
        };
    }

    fn wait_for_key(&mut self, now: Instant) {
        self.state = State::Waiting {
            deadline: now + self.menu.timeout,
        };
    }

    /// An invalid key (`invalid`) or a timeout.
    fn fail(&mut self, now: Instant, playing: bool, invalid: bool) {
        self.failures += 1;
        if self.failures >= self.menu.max_attempts {
            let default = self.menu.default.clone();
            self.finish(playing, default);
            return;
        }
        let sorry = self
            .menu
            .invalid_prompt
            .clone()
            .filter(|_| invalid)
            .into_iter()
            .collect();
        self.play(now, sorry);
    }

    fn finish(&mut self, playing: bool, route: Route) {
        if playing {
            self.outputs.push_back(Output::StopPlayback);
        }
        self.outputs.push_back(Output::Route(route));
        self.state = State::Done;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn menu(
        max_attempts: u32,
        invalid_prompt: bool,
    ) -> Result<Arc<IvrMenu>, Box<dyn std::error::Error>> {
        let mut options = BTreeMap::new();
        options.insert('1', "queue:sales".parse()?);
        options.insert('2', "queue:support".parse()?);
        options.insert('#', "hangup".parse()?);
        Ok(Arc::new(IvrMenu {
            name: "main".parse()?,
            extension: None,
            dids: Vec::new(),
            prompt: "main-menu".parse()?,
            timeout: TIMEOUT,
            max_attempts,
            invalid_prompt: if invalid_prompt {
                Some("invalid-choice".parse()?)
            } else {
                None
            },
            options,
            default: "queue:support".parse()?,
        }))
    }

    fn drain(s: &mut IvrSession) -> Vec<Output> {
        std::iter::from_fn(|| s.poll_output()).collect()
    }

    fn play(names: &[&str]) -> Result<Output, Box<dyn std::error::Error>> {
        Ok(Output::Play(
            names.iter().map(|n| n.parse()).collect::<Result<_, _>>()?,
        ))
    }

    fn route(text: &str) -> Result<Output, Box<dyn std::error::Error>> {
        Ok(Output::Route(text.parse()?))
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn plays_the_menu_then_a_key_after_it_routes() -> TestResult {
        let t0 = Instant::now();
        let mut s = IvrSession::new(menu(3, true)?, t0);
        assert_eq!(drain(&mut s), [play(&["main-menu"])?]);
        s.playback_done(t0 + secs(4));
        assert_eq!(s.poll_timeout(), Some(t0 + secs(4) + TIMEOUT));
        s.digit(t0 + secs(6), '1');
        // The prompt is over: nothing to stop.
        assert_eq!(drain(&mut s), [route("queue:sales")?]);
        assert!(s.is_done());
        assert_eq!(s.poll_timeout(), None);
        Ok(())
    }

    #[test]
    fn a_key_barges_in_on_the_prompt() -> TestResult {
        let t0 = Instant::now();
        let mut s = IvrSession::new(menu(3, true)?, t0);
        drain(&mut s);
        s.digit(t0 + secs(1), '#');
        assert_eq!(drain(&mut s), [Output::StopPlayback, route("hangup")?]);
        // Later inputs change nothing.
        s.playback_done(t0 + secs(2));
        s.digit(t0 + secs(3), '1');
        s.handle_timeout(t0 + secs(60));
        assert!(drain(&mut s).is_empty());
        Ok(())
    }

    #[test]
    fn an_invalid_key_plays_the_sorry_prompt_and_the_menu_again() -> TestResult {
        let t0 = Instant::now();
        let mut s = IvrSession::new(menu(3, true)?, t0);
        drain(&mut s);
        s.playback_done(t0 + secs(4));
        s.digit(t0 + secs(5), '7');
        assert_eq!(drain(&mut s), [play(&["invalid-choice", "main-menu"])?]);
        // Barge-in works on the replay too, and a valid key still routes.
        s.digit(t0 + secs(6), '2');
        assert_eq!(
            drain(&mut s),
            [Output::StopPlayback, route("queue:support")?]
        );
        Ok(())
    }

    #[test]
    fn an_invalid_key_without_a_sorry_prompt_replays_the_menu() -> TestResult {
        let t0 = Instant::now();
        let mut s = IvrSession::new(menu(3, false)?, t0);
        drain(&mut s);
        // Keys the menu does not offer, including RFC 4733's A-D.
        s.digit(t0 + secs(1), 'A');
        assert_eq!(drain(&mut s), [play(&["main-menu"])?]);
        Ok(())
    }

    #[test]
    fn the_key_timeout_starts_when_the_prompt_ends() -> TestResult {
        let t0 = Instant::now();
        let mut s = IvrSession::new(menu(3, true)?, t0);
        drain(&mut s);
        // While the prompt plays, only the guard is due.
        assert_eq!(s.poll_timeout(), Some(t0 + PLAYBACK_GUARD));
        s.handle_timeout(t0 + secs(10));
        assert!(drain(&mut s).is_empty());
        s.playback_done(t0 + secs(12));
        s.handle_timeout(t0 + secs(12) + TIMEOUT - Duration::from_millis(1));
        assert!(drain(&mut s).is_empty());
        s.handle_timeout(t0 + secs(12) + TIMEOUT);
        // A timeout repeats the menu without the sorry prompt.
        assert_eq!(drain(&mut s), [play(&["main-menu"])?]);
        assert_eq!(s.poll_timeout(), Some(t0 + secs(17) + PLAYBACK_GUARD));
        Ok(())
    }

    #[test]
    fn a_stale_playback_end_does_not_restart_the_timeout() -> TestResult {
        let t0 = Instant::now();
        let mut s = IvrSession::new(menu(3, true)?, t0);
        drain(&mut s);
        s.playback_done(t0 + secs(4));
        s.playback_done(t0 + secs(8));
        assert_eq!(s.poll_timeout(), Some(t0 + secs(4) + TIMEOUT));
        Ok(())
    }

    #[test]
    fn timeouts_up_to_max_attempts_take_the_default() -> TestResult {
        let t0 = Instant::now();
        let mut s = IvrSession::new(menu(3, true)?, t0);
        let mut now = t0;
        for attempt in 1..=3 {
            assert_eq!(drain(&mut s), [play(&["main-menu"])?], "attempt {attempt}");
            now += secs(4);
            s.playback_done(now);
            now += TIMEOUT;
            s.handle_timeout(now);
        }
        assert_eq!(drain(&mut s), [route("queue:support")?]);
        assert!(s.is_done());
        Ok(())
    }

    #[test]
    fn invalid_keys_and_timeouts_count_together() -> TestResult {
        let t0 = Instant::now();
        let mut s = IvrSession::new(menu(3, true)?, t0);
        drain(&mut s);
        s.digit(t0 + secs(1), '9'); // 1st failure, during the prompt
        assert_eq!(drain(&mut s), [play(&["invalid-choice", "main-menu"])?]);
        s.playback_done(t0 + secs(7));
        s.handle_timeout(t0 + secs(7) + TIMEOUT); // 2nd
        assert_eq!(drain(&mut s), [play(&["main-menu"])?]);
        s.digit(t0 + secs(13), '*'); // 3rd, barging in: stop, then default
        assert_eq!(
            drain(&mut s),
            [Output::StopPlayback, route("queue:support")?]
        );
        Ok(())
    }

    #[test]
    fn one_attempt_means_the_first_failure_takes_the_default() -> TestResult {
        let t0 = Instant::now();
        let mut s = IvrSession::new(menu(1, true)?, t0);
        drain(&mut s);
        s.playback_done(t0 + secs(4));
        s.digit(t0 + secs(5), '0');
        assert_eq!(drain(&mut s), [route("queue:support")?]);
        Ok(())
    }

    #[test]
    fn a_lost_playback_end_is_covered_by_the_guard() -> TestResult {
        let t0 = Instant::now();
        let mut s = IvrSession::new(menu(3, true)?, t0);
        drain(&mut s);
        s.handle_timeout(t0 + PLAYBACK_GUARD);
        assert!(drain(&mut s).is_empty());
        assert_eq!(s.poll_timeout(), Some(t0 + PLAYBACK_GUARD + TIMEOUT));
        s.digit(t0 + PLAYBACK_GUARD + secs(1), '1');
        assert_eq!(drain(&mut s), [route("queue:sales")?]);
        Ok(())
    }

    #[test]
    fn runs_a_menu_from_the_demo_configuration() -> TestResult {
        let config = crate::config::Config::from_toml_str(
            include_str!("../../config/switchboard.toml"),
            std::path::Path::new("switchboard.toml"),
        )?;
        let target = config
            .route_for("+15550101")
            .ok_or("no route for the IVR DID")?;
        let Route::Ivr(name) = target else {
            return Err(format!("+15550101 routes to {target}").into());
        };
        let menu = config.ivr_menu(&name).ok_or("no such menu")?.clone();
        let t0 = Instant::now();
        let mut s = IvrSession::new(Arc::new(menu), t0);
        let Some(Output::Play(prompts)) = s.poll_output() else {
            return Err("no prompt".into());
        };
        // Every prompt the menu names was loaded at start.
        let loaded = config.prompt_paths();
        for p in &prompts {
            assert!(loaded.contains(&config.media.prompt_path(p)), "{p}");
        }
        s.digit(t0 + secs(1), '1');
        assert_eq!(drain(&mut s), [Output::StopPlayback, route("queue:sales")?]);
        Ok(())
    }
}
