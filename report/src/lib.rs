//! Reports: a run's timeline, TTL-tuning sweeps and benchmark summaries, as Markdown and
//! self-contained HTML pages with SVG charts (plotters' SVG backend; no system fonts).
//!
//! [`card`] renders the client report card: lock libraries against scenario files.
//!
//! [`timeline_html`] draws one run — a history and the checker's verdict on it — as a page
//! with one SVG chart: a lane per client (holding intervals, writes, failures), a lane per
//! Redis node (whose value the lock key holds there), the faults as vertical lines, and the
//! checker's findings shaded on the chart and listed below it.

#![deny(missing_docs)]

pub mod bench;
pub mod card;
mod html;
pub mod matrix;
mod model;
pub mod sweep;
mod timeline;

pub use timeline::timeline_html;
