//! slawatch — real-time customer-service SLA monitoring.
//!
//! Data flow, one input record at a time:
//!
//! 1. [`event::decode`] turns bytes into a validated [`event::Event`], or a
//!    [`event::Rejection`] with a dead-letter reason.
//! 2. [`engine::Engine::handle`] advances the frontier, emits the alerts now due, and applies
//!    the event to its ticket's clocks. Targets come from the [`policy::Rules`] compiled by
//!    [`config`]; business time comes from a [`calendar::Calendar`].
//! 3. Everything emitted lands in an [`engine::Outbox`]: [`engine::SlaEvent`]s, and events
//!    held for an unknown ticket that expired.
//!
//! The pure core (`event`, `policy`, `calendar`, `engine`, `time`) reads no clock and does no
//! I/O. [`replay`] is the file adapter around it; [`live`] the Kafka one, which also pages
//! on-call through [`notify`] and serves metrics and the API through [`http`]; [`sim`]
//! generates realistic traffic for examples, tests and benchmarks; [`report`] reviews recorded
//! events against the standards (with a what-if of a candidate configuration); [`logging`] keeps input
//! strings from forging lines of the human log format.

pub mod calendar;
pub mod config;
pub mod engine;
pub mod event;
pub mod http;
pub mod live;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod partitioner;
pub mod policy;
pub mod replay;
pub mod report;
pub mod sim;
pub mod time;
