//! Queue announcements: "You are caller number three. Your estimated
//! waiting time is two minutes.", built from the shipped sound set
//! (`config/sounds/`, see its README and `scripts/make-sounds.sh`).
//!
//! Numbers are spoken from word files: `digit-0` .. `digit-9`, the teens
//! `number-10` .. `number-19` and the tens `number-20` .. `number-90`, so
//! 0 to 99 sound natural ("forty" + "two"); from 100 on, digit by digit.

use std::time::Duration;

use crate::media::player::{PlayItem, Prompt};

/// Pause between the position sentence and the wait sentence.
pub const SENTENCE_GAP: Duration = Duration::from_millis(400);

/// "You are caller number".
const POSITION: &str = "position";
/// "Your estimated waiting time is".
const WAIT: &str = "wait";
const MINUTE: &str = "minute";
const MINUTES: &str = "minutes";

/// The announcement sounds, all present (a missing one is refused when the
/// set is built, so building announcements cannot fail).
#[derive(Debug, Clone)]
pub struct AnnouncementPrompts {
    position: Prompt,
    wait: Prompt,
    minute: Prompt,
    minutes: Prompt,
    /// `digit-0` .. `digit-9`.
    digits: Vec<Prompt>,
    /// `number-10` .. `number-19`.
    teens: Vec<Prompt>,
    /// `number-20`, `number-30` .. `number-90`.
    tens: Vec<Prompt>,
}

/// A sound of the announcement set the lookup did not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("announcement sound {0:?} is not loaded")]
pub struct MissingPrompt(pub String);

fn digit_name(d: usize) -> String {
    format!("digit-{d}")
}

fn number_name(n: usize) -> String {
    format!("number-{n}")
}

impl AnnouncementPrompts {
    /// Every sound name the set needs, looked up as `<sounds_dir>/<name>.wav`.
    pub fn names() -> Vec<String> {
        let mut names: Vec<String> = [POSITION, WAIT, MINUTE, MINUTES]
            .iter()
            .map(|n| (*n).to_owned())
            .collect();
        names.extend((0..10).map(digit_name));
        names.extend((10..20).map(number_name));
        names.extend((2..10).map(|t| number_name(t * 10)));
        names
    }

    /// Builds the set from a lookup by sound name (typically the prompts
    /// the server loaded, through `MediaConfig::prompt_path`).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<Prompt>) -> Result<Self, MissingPrompt> {
        let get = |name: String| lookup(&name).ok_or(MissingPrompt(name));
        let all = |names: Vec<String>| names.into_iter().map(get).collect::<Result<Vec<_>, _>>();
        Ok(AnnouncementPrompts {
            position: get(POSITION.to_owned())?,
            wait: get(WAIT.to_owned())?,
            minute: get(MINUTE.to_owned())?,
            minutes: get(MINUTES.to_owned())?,
            digits: all((0..10).map(digit_name).collect())?,
            teens: all((10..20).map(number_name).collect())?,
            tens: all((2..10).map(|t| number_name(t * 10)).collect())?,
        })
    }

    /// `n` as words: 0-19 one word, 20-99 a ten then a digit unless it is
    /// 0, larger numbers digit by digit.
    fn number(&self, n: usize) -> Vec<PlayItem> {
        let word = |list: &[Prompt], i: usize| list.get(i).cloned().map(PlayItem::Prompt);
        match n {
            0..=9 => word(&self.digits, n).into_iter().collect(),
            10..=19 => word(&self.teens, n - 10).into_iter().collect(),
            20..=99 => word(&self.tens, n / 10 - 2)
                .into_iter()
                .chain((n % 10 != 0).then(|| word(&self.digits, n % 10)).flatten())
                .collect(),
            _ => n
                .to_string()
                .bytes()
                .filter_map(|b| word(&self.digits, usize::from(b - b'0')))
                .collect(),
        }
    }
}

/// The playlist announcing a waiting caller's position (1 = next) and
/// estimated wait, either part left out when not wanted. The wait is said in
/// whole minutes rounded up, at least one ("one minute" for a caller about
/// to be served, never "zero minutes"); it is left out while the queue has
/// no estimate yet (`None`, before its first answered call). Empty when
/// there is nothing to say.
pub fn position_announcement(
    prompts: &AnnouncementPrompts,
    position: usize,
    estimated_wait: Option<Duration>,
    say_position: bool,
    say_wait: bool,
) -> Vec<PlayItem> {
    let mut items = Vec::new();
    if say_position {
        items.push(PlayItem::Prompt(prompts.position.clone()));
        items.extend(prompts.number(position));
    }
    if let Some(wait) = estimated_wait.filter(|_| say_wait) {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        let minutes = usize::try_from(minutes).unwrap_or(usize::MAX);
        if !items.is_empty() {
            items.push(PlayItem::Silence(SENTENCE_GAP));
        }
        items.push(PlayItem::Prompt(prompts.wait.clone()));
        items.extend(prompts.number(minutes));
        let unit = if minutes == 1 {
            &prompts.minute
        } else {
            &prompts.minutes
        };
        items.push(PlayItem::Prompt(unit.clone()));
    }
    items
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A set whose prompts are named after their sound, one sample each.
    fn fake_set() -> Result<AnnouncementPrompts, MissingPrompt> {
        AnnouncementPrompts::from_lookup(|name| Some(Prompt::from_samples(name, vec![1])))
    }

    /// The names of the prompts and the silences, for readable asserts.
    fn spoken(items: &[PlayItem]) -> Vec<String> {
        items
            .iter()
            .map(|item| match item {
                PlayItem::Prompt(p) => p.name().to_owned(),
                PlayItem::Silence(d) => format!("silence {}ms", d.as_millis()),
                PlayItem::Tone { .. } => "tone".to_owned(),
            })
            .collect()
    }

    #[test]
    fn position_and_wait_with_a_gap() -> TestResult {
        let set = fake_set()?;
        let items = position_announcement(&set, 3, Some(Duration::from_secs(125)), true, true);
        assert_eq!(
            spoken(&items),
            [
                "position",
                "digit-3",
                "silence 400ms",
                "wait",
                "digit-3",
                "minutes"
            ]
        );
        Ok(())
    }

    #[test]
    fn wait_rounds_up_to_whole_minutes_at_least_one() -> TestResult {
        let set = fake_set()?;
        let wait = |secs| {
            spoken(&position_announcement(
                &set,
                1,
                Some(Duration::from_secs(secs)),
                false,
                true,
            ))
        };
        assert_eq!(wait(0), ["wait", "digit-1", "minute"]);
        assert_eq!(wait(60), ["wait", "digit-1", "minute"]);
        assert_eq!(wait(61), ["wait", "digit-2", "minutes"]);
        assert_eq!(wait(20 * 60), ["wait", "number-20", "minutes"]);
        Ok(())
    }

    #[test]
    fn parts_left_out_when_not_wanted_or_unknown() -> TestResult {
        let set = fake_set()?;
        let some = Some(Duration::from_secs(30));
        assert_eq!(
            spoken(&position_announcement(&set, 2, some, true, false)),
            ["position", "digit-2"]
        );
        // No estimate yet: only the position, and no dangling gap.
        assert_eq!(
            spoken(&position_announcement(&set, 2, None, true, true)),
            ["position", "digit-2"]
        );
        assert!(position_announcement(&set, 2, None, false, true).is_empty());
        assert!(position_announcement(&set, 2, some, false, false).is_empty());
        Ok(())
    }

    #[test]
    fn numbers_as_words() -> TestResult {
        let set = fake_set()?;
        let say = |n| spoken(&set.number(n));
        assert_eq!(say(0), ["digit-0"]);
        assert_eq!(say(9), ["digit-9"]);
        assert_eq!(say(10), ["number-10"]);
        assert_eq!(say(17), ["number-17"]);
        assert_eq!(say(20), ["number-20"]);
        assert_eq!(say(42), ["number-40", "digit-2"]);
        assert_eq!(say(99), ["number-90", "digit-9"]);
        assert_eq!(say(105), ["digit-1", "digit-0", "digit-5"]);
        Ok(())
    }

    #[test]
    fn a_missing_sound_is_named() {
        let err = AnnouncementPrompts::from_lookup(|name| {
            (name != "number-13").then(|| Prompt::from_samples(name, vec![1]))
        });
        assert_eq!(err.err(), Some(MissingPrompt("number-13".to_owned())));
    }

    #[test]
    fn the_shipped_sounds_are_the_whole_set() -> TestResult {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sounds");
        let names = AnnouncementPrompts::names();
        assert_eq!(names.len(), 4 + 10 + 10 + 8);
        let set = AnnouncementPrompts::from_lookup(|name| {
            Prompt::load(name, &dir.join(format!("{name}.wav"))).ok()
        })?;
        let items = position_announcement(&set, 42, Some(Duration::from_secs(90)), true, true);
        assert_eq!(
            spoken(&items),
            [
                "position",
                "number-40",
                "digit-2",
                "silence 400ms",
                "wait",
                "digit-2",
                "minutes"
            ]
        );
        Ok(())
    }
}
