//! Reports: a run's timeline, TTL-tuning sweeps and benchmark summaries, as Markdown and
//! self-contained HTML pages with SVG charts (plotters' SVG backend; no system fonts).
