//! slawatch — real-time customer-service SLA monitoring.
pub mod calendar;
pub mod config;
pub mod engine;
pub mod event;
pub mod policy;
pub mod replay;
pub mod sim;
pub mod time;
