//! Deterministic generator of realistic customer-service ticket event streams.
//!
//! Feeds load tests, demos and soak runs with traffic that exercises every clock the
//! monitor keeps: first and next responses scattered around typical targets (so a share
//! breaches), pending and on-hold pauses, reopens, complaints, priority and group changes,
//! and late closures. Arrivals follow a daily rhythm in Europe/Berlin local time and
//! email-type replies mostly land in business hours.
//!
//! Output is a pure function of [`SimConfig`]: one seeded `SmallRng` is drawn from in
//! emission order and heap ties are broken by a sequence number, so the same config always
//! yields byte-identical events (no wall clock, no global state). Events are produced
//! lazily from a min-heap holding each open ticket's next event plus the next arrival, so
//! memory is proportional to the tickets still open.
//!
//! Agents are named (each group has its own), and a share of solved tickets is rated by the
//! customer, worse when the first response came later than the channel's usual target.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write;

use chrono::{DateTime, Offset, TimeZone};
use chrono_tz::Europe::Berlin;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::calendar::{Calendar, RANGE_END};
use crate::time::format_into;

const SEC: i64 = 1_000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

const PRIORITIES: [&str; 4] = ["urgent", "high", "normal", "low"];
const CHANNELS: [&str; 6] = ["email", "phone", "chat", "social", "web", "other"];
const EMAIL: u8 = 0;
const PHONE: u8 = 1;
const CHAT: u8 = 2;
const WEB: u8 = 4;
const GROUPS: [&str; 4] = ["billing", "technical", "accounts", "returns"];
const TIERS: [&str; 3] = ["gold", "silver", "standard"];
const TAGS: [&str; 8] = ["vip", "outage", "refund", "invoice", "login", "shipping", "bug", "gdpr"];
/// Tag bitmasks (over `TAGS`) typical for each group, so tags correlate with the team.
const GROUP_TAGS: [u8; 4] = [0b0000_1100, 0b0101_0010, 0b1001_0000, 0b0010_0100];
const STATUSES: [&str; 6] = ["new", "open", "pending", "on_hold", "solved", "closed"];
const NEW: u8 = 0;
const OPEN: u8 = 1;
const PENDING: u8 = 2;
const ON_HOLD: u8 = 3;
const SOLVED: u8 = 4;
const CLOSED: u8 = 5;
const RESOLUTIONS: [&str; 4] = ["refund issued", "apology", "replacement", "goodwill credit"];
/// Agents by group (`GROUPS`): a ticket's replies come from one of them, by ticket number.
const AGENTS: [[&str; 3]; 4] = [
    ["Ana Costa", "Ben Okafor", "Chiara Rossi"],
    ["Dmitri Volkov", "Elif Yilmaz", "Femi Adeyemi"],
    ["Greta Lind", "Hiro Tanaka", "Ines Duarte"],
    ["Jonas Weber", "Kaja Nowak", "Lena Schulz"],
];
/// Relative weights of the scores 1 to 5: after a late first response, for complaints, and
/// otherwise.
const SCORES_LATE: [u32; 5] = [22, 20, 24, 19, 15];
const SCORES_COMPLAINT: [u32; 5] = [10, 12, 20, 28, 30];
const SCORES_USUAL: [u32; 5] = [4, 4, 9, 25, 58];
const COMMENTS: [&str; 4] = [
    "took far too long",
    "ok in the end",
    "quick and friendly",
    "problem solved, thanks",
];
/// Relative arrival rate by Berlin local hour on weekdays: late-morning and early-afternoon peaks.
const HOURLY: [f64; 24] = [
    0.06, 0.04, 0.03, 0.03, 0.04, 0.07, 0.15, 0.35, 0.65, 0.9, 1.0, 0.95, 0.75, 0.85, 0.95, 0.9, 0.8, 0.65, 0.5, 0.4,
    0.35, 0.28, 0.18, 0.1,
];
const WEEKEND_FACTOR: f64 = 0.35;

// Per-ticket plan bits drawn at creation. The low six (priority, group, tags, kind, channel,
// customer tier) are the `ticket.updated` events the ticket will see, oldest bit first.
const P_PRIO: u8 = 1;
const P_GROUP: u8 = 2;
const P_TAGS: u8 = 4;
const P_KIND: u8 = 8;
const P_CHANNEL: u8 = 16;
const UPDATES: u8 = 63;
const P_PENDING: u8 = 64;
const P_HOLD: u8 = 128;
/// Probability of each plan bit, by bit position.
const PLAN_ODDS: [f64; 8] = [0.08, 0.03, 0.04, 0.012, 0.005, 0.005, 0.25, 0.06];

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    /// Number of tickets to create.
    pub tickets: u64,
    /// First ticket arrival (ms since Unix epoch, UTC).
    pub start_ms: i64,
    /// Mean arrivals per hour at the daily peak (the rate follows a daily rhythm in
    /// Europe/Berlin local time: low at night, peaks late morning and early afternoon, lower at weekends).
    pub peak_per_hour: f64,
    /// Prefix for ticket ids, e.g. "T-" -> "T-000123".
    pub id_prefix: String,
    /// Where simulated time is shown: an event at simulated time `t` is stamped
    /// `origin_ms + (t - start_ms) / time_scale`. `origin_ms = start_ms` and `time_scale = 1`
    /// stamp simulated time as it is; the live demo replays a working day from 08:00 Berlin
    /// time at `time_scale` simulated seconds per second, starting now.
    pub origin_ms: i64,
    pub time_scale: f64,
}

impl SimConfig {
    /// Simulated time stamped as it is, ticket ids `T-000001`, ….
    pub fn new(seed: u64, tickets: u64, start_ms: i64, peak_per_hour: f64) -> SimConfig {
        SimConfig {
            seed,
            tickets,
            start_ms,
            peak_per_hour,
            id_prefix: "T-".into(),
            origin_ms: start_ms,
            time_scale: 1.0,
        }
    }
}

/// One generated event: its (shown) time, ticket and compact JSON encoding (no trailing newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimEvent {
    pub at_ms: i64,
    pub ticket_id: String,
    pub json: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Create,
    Note,
    Update,
    AgentReply,
    CustomerReply,
    Status(u8),
    ComplaintResolved,
    Rated,
}

struct Ticket {
    num: u64,
    /// The step currently waiting in the heap.
    step: Step,
    /// Steps already decided to follow it, the next one last.
    stack: [(i64, Step); 4],
    len: u8,
    priority: u8,
    channel: u8,
    group: u8,
    tier: u8,
    tags: u8,
    status: u8,
    rounds: u8,
    plan: u8,
    complaint: bool,
    by_agent: bool,
    reopened: bool,
    created: i64,
    /// Whether an agent replied publicly yet, and whether that first reply came after
    /// [`reply_target`].
    answered: bool,
    late: bool,
}

impl Ticket {
    fn then(&mut self, steps: &[(i64, Step)]) {
        for &s in steps.iter().rev() {
            self.stack[self.len as usize] = s;
            self.len += 1;
        }
    }
    fn live(&self) -> bool {
        self.channel == PHONE || self.channel == CHAT
    }
}

/// Lazy, time-ordered event stream; see [`generate`].
pub struct Simulation {
    cfg: SimConfig,
    rng: SmallRng,
    /// `prefix` JSON-escaped (without quotes), computed once.
    esc_prefix: String,
    spawned: u64,
    events: u64,
    seq: u64,
    heap: BinaryHeap<Reverse<(i64, u64, u32)>>,
    slots: Vec<Ticket>,
    free: Vec<u32>,
    office: Calendar,
}

/// Events in non-decreasing `at_ms` order; every ticket's lifecycle ends, so the stream is finite.
///
/// Panics if `peak_per_hour` is not positive while tickets are requested.
pub fn generate(cfg: &SimConfig) -> Simulation {
    assert!(
        cfg.tickets == 0 || cfg.peak_per_hour > 0.0,
        "peak_per_hour must be positive"
    );
    let quoted = serde_json::to_string(&cfg.id_prefix).expect("strings always serialize");
    let mut sim = Simulation {
        cfg: cfg.clone(),
        rng: SmallRng::seed_from_u64(cfg.seed),
        esc_prefix: quoted[1..quoted.len() - 1].to_string(),
        spawned: 0,
        events: 0,
        seq: 0,
        heap: BinaryHeap::new(),
        slots: Vec::new(),
        free: Vec::new(),
        office: office_hours(),
    };
    if cfg.tickets > 0 {
        sim.spawn(cfg.start_ms);
    }
    sim
}

impl Iterator for Simulation {
    type Item = SimEvent;

    fn next(&mut self) -> Option<SimEvent> {
        let Reverse((now, _, idx)) = self.heap.pop()?;
        let i = idx as usize;
        let event = self.emit(i, now);
        if self.slots[i].step == Step::Create && self.spawned < self.cfg.tickets {
            let at = self.next_arrival(now);
            self.spawn(at);
        }
        if self.slots[i].len == 0 {
            self.decide(i, now);
        }
        let t = &mut self.slots[i];
        if t.len == 0 {
            self.free.push(idx); // lifecycle over: the slot is reused by a later arrival
        } else {
            t.len -= 1;
            let (at, step) = t.stack[t.len as usize];
            self.schedule(idx, at, step);
        }
        Some(event)
    }
}

impl Simulation {
    fn schedule(&mut self, idx: u32, at: i64, step: Step) {
        self.slots[idx as usize].step = step;
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, idx)));
    }

    fn shown(&self, t: i64) -> i64 {
        let c = &self.cfg;
        c.origin_ms + ((t - c.start_ms) as f64 / c.time_scale) as i64
    }

    /// Non-homogeneous Poisson arrivals by thinning a peak-rate process with the daily rhythm.
    fn next_arrival(&mut self, mut t: i64) -> i64 {
        let mean_gap = HOUR as f64 / self.cfg.peak_per_hour;
        loop {
            t += (-(1.0 - self.rng.random::<f64>()).ln() * mean_gap).max(1.0) as i64;
            let local = berlin_local(t);
            let factor = [1.0, WEEKEND_FACTOR][(weekday(local) >= 5) as usize];
            if self.rng.random::<f64>() < HOURLY[(local.rem_euclid(DAY) / HOUR) as usize] * factor {
                return t;
            }
        }
    }

    fn spawn(&mut self, at: i64) {
        self.spawned += 1;
        let rng = &mut self.rng;
        let office = self.office.is_business(at);
        let mut channel = pick(rng, &[40, 12, 18, 7, 20, 3]);
        if channel == PHONE && !office {
            channel = EMAIL; // phone lines are staffed in office hours; voicemail arrives as email
        }
        let (group, tier) = (pick(rng, &[25, 35, 20, 20]), pick(rng, &[5, 20, 75]));
        let mut tags = 0u8;
        for _ in 0..pick(rng, &[35, 40, 18, 7]) {
            tags |= random_bit(rng, GROUP_TAGS[group as usize] & !tags);
        }
        if tier == 0 && tags.count_ones() < 3 {
            tags |= 1; // gold customers carry "vip"
        }
        let complaint = chance(rng, 0.09);
        let mut plan = 0;
        for (bit, &p) in PLAN_ODDS.iter().enumerate() {
            plan |= (chance(rng, p) as u8) << bit;
        }
        if complaint {
            plan &= !P_KIND; // only requests escalate into complaints later on
        }
        let by_agent = chance(rng, 0.03);
        let ticket = Ticket {
            num: self.spawned,
            step: Step::Create,
            stack: [(0, Step::Create); 4],
            len: 0,
            priority: pick(rng, &[4, 16, 60, 20]),
            channel,
            group,
            tier,
            tags,
            status: if by_agent { OPEN } else { NEW },
            rounds: 1 + pick(rng, &[40, 30, 18, 12]),
            plan,
            complaint,
            by_agent,
            reopened: false,
            created: at,
            answered: false,
            late: false,
        };
        let idx = match self.free.pop() {
            Some(idx) => {
                self.slots[idx as usize] = ticket;
                idx
            }
            None => {
                self.slots.push(ticket);
                (self.slots.len() - 1) as u32
            }
        };
        self.schedule(idx, at, Step::Create);
    }

    /// Draws what a ticket does after its last decided step; leaves the stack empty when done.
    fn decide(&mut self, i: usize, now: i64) {
        let (t, rng) = (&mut self.slots[i], &mut self.rng);
        match t.step {
            Step::Create if t.by_agent => t.then(&[(now + rng.random_range(5 * SEC..2 * MIN), Step::AgentReply)]),
            Step::Create | Step::CustomerReply => {
                let mut at = agent_reply_at(rng, &self.office, t, now);
                if t.status == OPEN {
                    t.then(&[(at, Step::AgentReply)]);
                } else {
                    // New tickets are opened right before the reply; pending/solved ones are
                    // reopened by the customer's message itself.
                    let pre = if t.status == NEW {
                        at - rng.random_range(SEC..MIN)
                    } else {
                        now + rng.random_range(2 * SEC..30 * SEC)
                    }
                    .max(now + 1);
                    at = at.max(pre + 1);
                    t.then(&[(pre, Step::Status(OPEN)), (at, Step::AgentReply)]);
                }
            }
            Step::AgentReply if t.plan & P_HOLD != 0 => {
                t.plan &= !P_HOLD;
                let hold = now + rng.random_range(5 * SEC..2 * MIN);
                let resume = hold + lognormal(rng, 6.0 * HOUR as f64, 0.8).max(MIN);
                let reply = resume + rng.random_range(MIN..20 * MIN);
                t.then(&[
                    (hold, Step::Status(ON_HOLD)),
                    (resume, Step::Status(OPEN)),
                    (reply, Step::AgentReply),
                ]);
            }
            Step::AgentReply if t.rounds == 0 && t.complaint => {
                let delay = lognormal(rng, 8.0 * HOUR as f64, 0.9).max(MIN);
                t.then(&[(add_business(&self.office, now, delay), Step::ComplaintResolved)]);
            }
            Step::AgentReply if t.rounds == 0 => {
                let at = if chance(rng, 0.55) {
                    now + rng.random_range(5 * SEC..3 * MIN) // "submit as solved" with the reply
                } else {
                    agent_reply_at(rng, &self.office, t, now)
                };
                t.then(&[(at, Step::Status(SOLVED))]);
            }
            Step::AgentReply => {
                t.rounds -= 1;
                if t.plan & P_PENDING != 0 && (t.rounds == 0 || chance(rng, 0.5)) {
                    t.plan &= !P_PENDING;
                    let pending = now + rng.random_range(3 * SEC..MIN);
                    let reply = pending + lognormal(rng, 20.0 * HOUR as f64, 0.9).max(MIN);
                    t.then(&[(pending, Step::Status(PENDING)), (reply, Step::CustomerReply)]);
                } else {
                    let median = if t.live() { 3 * MIN } else { 5 * HOUR } as f64;
                    let factor = [0.4, 0.7, 1.0, 1.3][t.priority as usize];
                    let delay = lognormal(rng, median * factor, 1.0).max(SEC);
                    t.then(&[(now + delay, Step::CustomerReply)]);
                }
            }
            Step::Status(SOLVED) if !t.reopened && !t.complaint && chance(rng, 0.067) => {
                t.reopened = true;
                if chance(rng, 0.6) {
                    let at = now + lognormal(rng, 12.0 * HOUR as f64, 1.0).max(MIN);
                    t.then(&[(at, Step::CustomerReply)]);
                } else {
                    let at = now + lognormal(rng, 8.0 * HOUR as f64, 1.0).max(MIN);
                    let reply = at + rng.random_range(MIN..30 * MIN);
                    t.then(&[(at, Step::Status(OPEN)), (reply, Step::AgentReply)]);
                }
            }
            // Closing is optional so every lifecycle (and thus the stream) ends either way.
            Step::Status(SOLVED) if chance(rng, 0.85) => {
                let close = (now + rng.random_range(2 * DAY..4 * DAY), Step::Status(CLOSED));
                if chance(rng, 0.3) {
                    // A chat or call ends with its survey; other customers rate whenever they
                    // get to it, after the close too.
                    let median = if t.live() { 5 * MIN } else { 4 * HOUR };
                    let rated = (now + lognormal(rng, median as f64, 1.0).max(MIN), Step::Rated);
                    t.then(&if rated.0 < close.0 {
                        [rated, close]
                    } else {
                        [close, rated]
                    });
                } else {
                    t.then(&[close]);
                }
            }
            Step::ComplaintResolved if chance(rng, 0.4) => {
                t.then(&[(now + rng.random_range(10 * SEC..10 * MIN), Step::Status(SOLVED))])
            }
            _ => {}
        }
        // Interleave a triage update or an internal note before the next step while unsolved.
        if t.len > 0 && t.status < SOLVED {
            let first = t.stack[t.len as usize - 1].0;
            let extra = if first - now < 2 * SEC {
                None
            } else if t.plan & UPDATES != 0 && chance(rng, 0.4) {
                Some(Step::Update)
            } else if chance(rng, 0.08) {
                Some(Step::Note)
            } else {
                None
            };
            if let Some(step) = extra {
                t.then(&[(rng.random_range(now + 1..first), step)]);
            }
        }
    }

    /// Applies the ticket's current step to its state and encodes it as JSON.
    fn emit(&mut self, i: usize, now: i64) -> SimEvent {
        let shown = self.shown(now);
        let (t, rng) = (&mut self.slots[i], &mut self.rng);
        let ty = match t.step {
            Step::Create => "ticket.created",
            Step::Update => "ticket.updated",
            Step::Status(_) => "ticket.status_changed",
            Step::ComplaintResolved => "complaint.resolved",
            Step::Rated => "satisfaction.rated",
            _ => "reply.sent",
        };
        let mut s = String::with_capacity(240);
        s.push_str("{\"type\":\"");
        s.push_str(ty);
        s.push_str("\",\"ticket_id\":\"");
        s.push_str(&self.esc_prefix);
        let _ = write!(s, "{:06}\",\"occurred_at\":\"", t.num);
        s.push_str(format_into(shown, &mut [0; 24]));
        let _ = write!(s, "\",\"event_id\":\"e-{}-{}\"", self.cfg.seed, self.events);
        self.events += 1;
        match t.step {
            Step::Create => {
                let kind = if t.complaint { "complaint" } else { "request" };
                let by = if t.by_agent { "agent" } else { "customer" };
                let _ = write!(
                    s,
                    ",\"priority\":\"{}\",\"channel\":\"{}\",\"kind\":\"{kind}\",\"status\":\"{}\",\
                     \"opened_by\":\"{by}\",\"group\":\"{}\",\"customer_tier\":\"{}\"",
                    PRIORITIES[t.priority as usize],
                    CHANNELS[t.channel as usize],
                    STATUSES[t.status as usize],
                    GROUPS[t.group as usize],
                    TIERS[t.tier as usize],
                );
                write_tags(&mut s, t.tags);
            }
            Step::Note | Step::AgentReply => {
                let public = t.step == Step::AgentReply;
                if public && !t.answered {
                    t.answered = true;
                    t.late = now - t.created > reply_target(t);
                }
                let agent = AGENTS[t.group as usize][(t.num % 3) as usize];
                let _ = write!(s, ",\"author\":\"agent\",\"public\":{public},\"agent\":\"{agent}\"");
            }
            Step::CustomerReply => s.push_str(",\"author\":\"customer\",\"public\":true"),
            Step::Status(status) => {
                t.status = status;
                let _ = write!(s, ",\"status\":\"{}\"", STATUSES[status as usize]);
            }
            Step::Rated => {
                let weights = match (t.late, t.complaint) {
                    (true, _) => &SCORES_LATE,
                    (false, true) => &SCORES_COMPLAINT,
                    (false, false) => &SCORES_USUAL,
                };
                let score = pick(rng, weights) + 1;
                let _ = write!(s, ",\"score\":{score}");
                if chance(rng, 0.2) {
                    let _ = write!(s, ",\"comment\":\"{}\"", COMMENTS[usize::from(score - 1) * 4 / 5]);
                }
            }
            Step::ComplaintResolved => {
                if chance(rng, 0.7) {
                    let r = RESOLUTIONS[rng.random_range(0..RESOLUTIONS.len())];
                    let _ = write!(s, ",\"resolution\":\"{r}\"");
                }
            }
            Step::Update => {
                let bit = t.plan & UPDATES & (t.plan & UPDATES).wrapping_neg();
                t.plan &= !bit;
                let mut raise = bit == P_PRIO; // group moves sometimes come with a raise, too
                match bit {
                    P_PRIO => {}
                    P_GROUP => {
                        t.group = (t.group + rng.random_range(1..4)) % 4;
                        let _ = write!(s, ",\"group\":\"{}\"", GROUPS[t.group as usize]);
                        raise = chance(rng, 0.3);
                    }
                    P_TAGS => {
                        if t.tags.count_ones() >= 3 {
                            t.tags &= t.tags - 1;
                        }
                        t.tags |= random_bit(rng, !t.tags);
                        write_tags(&mut s, t.tags);
                    }
                    P_KIND => {
                        t.complaint = true;
                        s.push_str(",\"kind\":\"complaint\"");
                    }
                    P_CHANNEL => {
                        // Conversations move off chat/phone/social into email, email into web.
                        t.channel = if t.channel == EMAIL { WEB } else { EMAIL };
                        let _ = write!(s, ",\"channel\":\"{}\"", CHANNELS[t.channel as usize]);
                    }
                    _ => {
                        // Customer tier (bit 32): upgrades, except that gold can only drop to silver.
                        t.tier = if t.tier == 0 { 1 } else { t.tier - 1 };
                        let _ = write!(s, ",\"customer_tier\":\"{}\"", TIERS[t.tier as usize]);
                    }
                }
                if raise {
                    // Raises outnumber lowerings; urgent can only go down, low only up.
                    let up = t.priority == 3 || (t.priority > 0 && chance(rng, 0.7));
                    t.priority = if up { t.priority - 1 } else { t.priority + 1 };
                    let _ = write!(s, ",\"priority\":\"{}\"", PRIORITIES[t.priority as usize]);
                }
            }
        }
        s.push('}');
        SimEvent {
            at_ms: shown,
            ticket_id: format!("{}{:06}", self.cfg.id_prefix, t.num),
            json: s,
        }
    }
}

/// When the agent's next public reply lands: lognormal around the channel/priority target
/// (median half the target, so roughly one reply in six breaches), mostly in business hours
/// for email-type channels.
fn agent_reply_at(rng: &mut SmallRng, office: &Calendar, t: &Ticket, now: i64) -> i64 {
    let delay = lognormal(rng, 0.5 * reply_target(t) as f64, 0.75).max(SEC);
    if t.live() || chance(rng, 0.1) {
        now + delay // live channels run around the clock; some email replies come off-hours
    } else {
        add_business(office, now, delay)
    }
}

/// The reply time a ticket's channel and priority usually aim at.
fn reply_target(t: &Ticket) -> i64 {
    let p = t.priority as usize;
    if t.live() {
        [2, 5, 10, 15][p] * MIN
    } else {
        [1, 2, 4, 8][p].min(if t.complaint { 4 } else { 8 }) * HOUR // complaints: ack within 4h
    }
}

/// Mon–Fri 08:00–18:00 Europe/Berlin, no holidays: when email-type work gets done.
fn office_hours() -> Calendar {
    let day = vec![(8 * HOUR as u32, 18 * HOUR as u32)];
    let week = [day.clone(), day.clone(), day.clone(), day.clone(), day, vec![], vec![]];
    Calendar::new(Berlin, week, &[])
}

/// `dur` of office time after `t`.
fn add_business(office: &Calendar, t: i64, dur: i64) -> i64 {
    office.add(t, dur).unwrap_or(RANGE_END)
}

/// Berlin wall-clock time of `utc_ms`, as ms since the local epoch.
fn berlin_local(utc_ms: i64) -> i64 {
    let dt = DateTime::from_timestamp_millis(utc_ms).expect("timestamp within chrono's range");
    let offset = Berlin.offset_from_utc_datetime(&dt.naive_utc()).fix();
    utc_ms + offset.local_minus_utc() as i64 * SEC
}

/// Day of week of a local timestamp, 0 = Monday (1970-01-01 was a Thursday).
fn weekday(local_ms: i64) -> i64 {
    (local_ms.div_euclid(DAY) + 3).rem_euclid(7)
}

fn write_tags(s: &mut String, tags: u8) {
    s.push_str(",\"tags\":[");
    for (k, tag) in TAGS.iter().enumerate().filter(|(k, _)| tags & (1 << k) != 0) {
        let sep = if tags & ((1 << k) - 1) != 0 { "," } else { "" };
        let _ = write!(s, "{sep}\"{tag}\"");
    }
    s.push(']');
}

fn chance(rng: &mut SmallRng, p: f64) -> bool {
    rng.random::<f64>() < p
}

/// Index drawn with the given relative weights.
fn pick(rng: &mut SmallRng, weights: &[u32]) -> u8 {
    let mut r = rng.random_range(0..weights.iter().sum::<u32>());
    for (k, &w) in weights.iter().enumerate() {
        if r < w {
            return k as u8;
        }
        r -= w;
    }
    unreachable!("r is below the weight sum")
}

/// One uniformly chosen set bit of `mask` (0 if empty).
fn random_bit(rng: &mut SmallRng, mut mask: u8) -> u8 {
    if mask == 0 {
        return 0;
    }
    for _ in 0..rng.random_range(0..mask.count_ones()) {
        mask &= mask - 1;
    }
    mask & mask.wrapping_neg()
}

/// Lognormal draw (Box–Muller), clipped at ±3.5σ so no ticket stays open for years.
fn lognormal(rng: &mut SmallRng, median: f64, sigma: f64) -> i64 {
    let (u1, u2) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (median * (sigma * z.clamp(-3.5, 3.5)).exp()) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::{HashMap, HashSet};

    fn cfg(seed: u64, tickets: u64) -> SimConfig {
        SimConfig::new(seed, tickets, 1_717_372_800_000, 60.0) // Monday 2024-06-03 00:00 UTC
    }

    #[test]
    fn deterministic_per_seed() {
        let run = |seed| generate(&cfg(seed, 300)).collect::<Vec<_>>();
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn events_are_valid_and_ordered() {
        let (mut last_at, mut ids) = (i64::MIN, HashSet::new());
        let mut last: HashMap<String, (i64, String)> = HashMap::new();
        for e in generate(&cfg(1, 2000)) {
            assert!(e.at_ms >= last_at, "global order");
            last_at = e.at_ms;
            let v: Value = serde_json::from_str(&e.json).expect("valid JSON");
            let ty = v["type"].as_str().expect("type");
            assert_eq!(v["ticket_id"], e.ticket_id.as_str());
            let ts = v["occurred_at"].as_str().expect("occurred_at");
            assert_eq!(ts.len(), 24);
            let parsed = DateTime::parse_from_rfc3339(ts).expect("RFC 3339");
            assert_eq!(parsed.timestamp_millis(), e.at_ms);
            assert!(ids.insert(v["event_id"].as_str().expect("event_id").to_string()));
            match ty {
                "ticket.created" => {
                    let fields = ["priority", "channel", "kind", "status", "opened_by"];
                    for f in fields.into_iter().chain(["group", "customer_tier"]) {
                        assert!(v[f].is_string(), "{f} in {}", e.json);
                    }
                    assert!(v["tags"].as_array().unwrap().len() <= 3);
                }
                "ticket.updated" => assert!(v.as_object().unwrap().len() > 4, "{}", e.json),
                "ticket.status_changed" => {
                    assert!(STATUSES.contains(&v["status"].as_str().unwrap()))
                }
                "reply.sent" => assert!(v["author"].is_string() && v["public"].is_boolean()),
                "complaint.resolved" => {}
                "satisfaction.rated" => assert!((1..=5).contains(&v["score"].as_u64().unwrap())),
                other => panic!("unexpected type {other}"),
            }
            match last.get(&e.ticket_id) {
                None => assert_eq!(ty, "ticket.created", "first event of {}", e.ticket_id),
                Some((at, prev)) => {
                    assert!(e.at_ms > *at, "per-ticket strictly increasing");
                    let rating = ty == "satisfaction.rated";
                    assert!(rating || !prev.contains("\"closed\""), "event after closed");
                    assert_ne!(ty, "ticket.created");
                }
            }
            last.insert(e.ticket_id, (e.at_ms, e.json));
        }
        assert_eq!(last.len(), 2000);
    }

    #[test]
    fn mix_is_realistic() {
        let n = 5000;
        let (mut events, mut complaints, mut pending, mut notes, mut outbound) = (0, 0, 0, 0, 0);
        for e in generate(&cfg(3, n)) {
            events += 1;
            let j = &e.json;
            complaints += j.contains("\"kind\":\"complaint\"") as u64;
            pending += j.contains("\"status\":\"pending\"") as u64;
            notes += j.contains("\"public\":false") as u64;
            outbound += j.contains("\"opened_by\":\"agent\"") as u64;
        }
        let within = |k: u64, range: std::ops::Range<f64>, what: &str| {
            let share = k as f64 / n as f64;
            assert!(range.contains(&share), "{what}: {share}");
        };
        within(events, 6.0..14.0, "events per ticket");
        within(complaints, 0.07..0.13, "complaint share");
        within(pending, 0.18..0.32, "pending share");
        assert!(notes > 0 && outbound > 0);
    }
}
