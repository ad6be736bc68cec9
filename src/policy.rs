//! Compiled rules: engine settings, calendars and policies, and policy selection (SPEC §4). Pure.
//!
//! Values that policies compare against are small numbers fixed at load time: vocabulary
//! sets are bitmasks, groups and customer tiers named by any policy have ids `1..=n` (ids
//! above `n` are other values a ticket may carry), `tags_any` tags have bits in a `u64`,
//! and each distinct `warn_at` fraction has a bit, so a cycle records the warnings it
//! emitted in one `u32` whatever policy it moves to.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::calendar::Calendar;
use crate::event::{Channel, Kind, Priority, Status, Vocabulary};

/// The `[engine]` section, in milliseconds and counts.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub allowed_lateness: i64,
    pub idle_grace: i64,
    pub max_clock_skew: i64,
    pub orphan_hold: i64,
    pub max_orphans: usize,
    /// Input bytes of the held orphans ([`crate::event::Event::size`]).
    pub max_orphan_bytes: usize,
    pub max_tickets: usize,
    pub max_event_bytes: usize,
    pub ticket_retention: i64,
}

#[derive(Debug)]
pub struct NamedCalendar {
    pub name: Arc<str>,
    pub calendar: Arc<Calendar>,
}

/// Everything the engine needs from the configuration.
#[derive(Debug)]
pub struct Rules {
    pub engine: EngineSettings,
    /// Index 0 is the built-in `24x7`.
    pub calendars: Vec<NamedCalendar>,
    pub policies: Vec<Policy>,
    /// Distinct `warn_at` fractions; a fraction's index is its bit.
    pub fractions: Vec<f64>,
    /// Distinct `tags_any` tags and their bits.
    pub tag_bits: HashMap<String, u32>,
    /// Groups and customer tiers named by policies; id = index + 1.
    pub groups: Vec<Arc<str>>,
    pub tiers: Vec<Arc<str>>,
    /// Hash of the `[engine]`, `[[calendar]]` and `[[policy]]` sections as written: a saved
    /// state computed under other rules is re-evaluated when restored (SPEC §7).
    pub fingerprint: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Clock {
    FirstResponse,
    NextResponse,
    Resolution,
}

impl Clock {
    pub const ALL: [Clock; 3] = [Clock::FirstResponse, Clock::NextResponse, Clock::Resolution];

    pub fn as_str(self) -> &'static str {
        match self {
            Clock::FirstResponse => "first_response",
            Clock::NextResponse => "next_response",
            Clock::Resolution => "resolution",
        }
    }
}

impl fmt::Display for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Warning {
    pub fraction: f64,
    /// Index into [`Rules::fractions`].
    pub bit: u8,
}

#[derive(Debug)]
pub struct Policy {
    pub name: Arc<str>,
    /// Index into [`Rules::calendars`].
    pub calendar: usize,
    /// Bits of the statuses that pause the resolution clock.
    pub pause: u8,
    /// Ascending by fraction.
    pub warnings: Vec<Warning>,
    /// Ascending business durations after the deadline; level = index + 1.
    pub escalate: Vec<i64>,
    pub matcher: Matcher,
    /// `targets[clock][priority]`, business milliseconds.
    pub targets: [[Option<i64>; 4]; 3],
}

impl Policy {
    pub fn target(&self, clock: Clock, priority: Priority) -> Option<i64> {
        self.targets[clock as usize][priority as usize]
    }
}

/// A policy's `match`; `u8::MAX` masks and `None` lists match anything.
#[derive(Debug)]
pub struct Matcher {
    pub priority: u8,
    pub channel: u8,
    pub kind: u8,
    pub groups: Option<Vec<u32>>,
    pub tiers: Option<Vec<u32>>,
    pub tags_any: Option<u64>,
}

/// The attributes a policy is chosen by. `group` and `tier` are ids (0 = none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attrs {
    pub priority: Priority,
    pub channel: Channel,
    pub kind: Kind,
    pub group: u32,
    pub tier: u32,
    /// Bits of the ticket's tags that some policy's `tags_any` names.
    pub tags: u64,
}

impl Matcher {
    fn matches(&self, a: &Attrs) -> bool {
        self.priority & a.priority.bit() != 0
            && self.channel & a.channel.bit() != 0
            && self.kind & a.kind.bit() != 0
            && self.groups.as_ref().is_none_or(|g| g.contains(&a.group))
            && self.tiers.as_ref().is_none_or(|t| t.contains(&a.tier))
            && self.tags_any.is_none_or(|t| t & a.tags != 0)
    }
}

/// Statuses that pause tickets no policy matches.
pub const DEFAULT_PAUSE: u8 = 1 << Status::Pending as u8 | 1 << Status::OnHold as u8;

impl Rules {
    /// The first policy whose `match` holds.
    pub fn select(&self, attrs: &Attrs) -> Option<usize> {
        self.policies.iter().position(|p| p.matcher.matches(attrs))
    }

    pub fn calendar_of(&self, policy: Option<usize>) -> &Calendar {
        &self.calendars[policy.map_or(0, |p| self.policies[p].calendar)].calendar
    }

    pub fn pause_of(&self, policy: Option<usize>) -> u8 {
        policy.map_or(DEFAULT_PAUSE, |p| self.policies[p].pause)
    }

    /// Bits of the tags that matter to some policy.
    pub fn tag_mask<'a>(&self, tags: impl IntoIterator<Item = &'a str>) -> u64 {
        tags.into_iter()
            .filter_map(|t| self.tag_bits.get(t))
            .fold(0, |acc, bit| acc | 1 << bit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml;

    fn attrs(priority: Priority, channel: Channel, kind: Kind) -> Attrs {
        Attrs {
            priority,
            channel,
            kind,
            group: 0,
            tier: 0,
            tags: 0,
        }
    }

    const RULES: &str = r#"
        [[policy]]
        name = "vip-complaints"
        [policy.match]
        kind = ["complaint"]
        customer_tier = ["gold"]
        [[policy]]
        name = "outage"
        [policy.match]
        tags_any = ["outage", "p1"]
        [[policy]]
        name = "chat"
        [policy.match]
        channel = ["chat", "phone"]
        priority = ["urgent", "high"]
        [[policy]]
        name = "everything"
    "#;

    #[test]
    fn first_matching_policy_wins() {
        let rules = from_toml(RULES).unwrap().rules;
        let mut a = attrs(Priority::High, Channel::Chat, Kind::Complaint);
        assert_eq!(rules.select(&a), Some(2));
        a.tier = 1; // gold
        assert_eq!(rules.select(&a), Some(0));
        a.tier = 2; // some other tier
        a.tags = rules.tag_mask(["p1", "unrelated"]);
        assert_eq!(rules.select(&a), Some(1));
        assert_eq!(
            rules.select(&attrs(Priority::Low, Channel::Chat, Kind::Request)),
            Some(3)
        );
    }

    #[test]
    fn ticket_matching_no_policy_is_unmatched() {
        let rules = from_toml("[[policy]]\nname = \"p\"\n[policy.match]\nchannel = [\"email\"]\n")
            .unwrap()
            .rules;
        assert_eq!(rules.select(&attrs(Priority::Low, Channel::Chat, Kind::Request)), None);
        assert_eq!(rules.pause_of(None), DEFAULT_PAUSE);
    }
}
