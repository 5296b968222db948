//! The HTML page around the chart: title, run facts, the findings with the faults before
//! each, the verdict per property, and the fault list.

use crate::html::{escape, ms3};
use crate::model::Model;
use checker::{Event, Outcome, Property, Verdict};
use std::fmt::Write as _;

/// The page's stylesheet (inline).
const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#1e1e1e;max-width:1460px}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:22px 0 8px}\
.meta{color:#555;margin:0 0 12px}.chart{overflow-x:auto;border:1px solid #ddd}\
.chart svg{display:block}table{border-collapse:collapse}\
td,th{padding:3px 12px 3px 0;text-align:left;vertical-align:top;border-bottom:1px solid #e4e4e4}\
.violated{color:#c0161b;font-weight:bold}.holds{color:#1a7f37}\
ol.findings li{margin-bottom:10px}.prop{font-family:monospace;font-weight:bold;color:#c0161b}\
.faults{color:#555;margin:2px 0 0 0}.note{color:#555}";

/// The page: `svg` is the chart, already drawn.
pub(super) fn page(title: &str, model: &Model, verdict: &Verdict, svg: &str) -> String {
    let mut h = String::new();
    let t = escape(title);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{t}</h1>\n"
    );
    let mut meta = Vec::new();
    if let Some(i) = &model.info {
        meta.push(format!("scenario {}", escape(&i.scenario)));
        meta.push(format!("backend {}", escape(&i.backend)));
        meta.push(format!("seed {}", i.seed));
        meta.push(format!("resource {}", escape(&i.resource)));
        match i.ttl_ms {
            Some(ttl) => meta.push(format!("TTL {ttl} ms")),
            None => meta.push("no TTL".to_string()),
        }
    }
    meta.push(format!("history ends at {}", ms3(model.end_us)));
    let _ = writeln!(h, "<p class=\"meta\">{}</p>", meta.join(" · "));
    let _ = writeln!(h, "<div class=\"chart\">\n{svg}</div>");
    if model.nodes.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"note\">No node lanes: the history has no <code>key_changed</code> \
             records (only the simulator writes them).</p>"
        );
    }

    let _ = writeln!(h, "<h2>Findings</h2>");
    if verdict.findings.is_empty() {
        let _ = writeln!(h, "<p>No findings: every property holds.</p>");
    } else {
        let _ = writeln!(h, "<ol class=\"findings\">");
        for f in &verdict.findings {
            let _ = write!(
                h,
                "<li><span class=\"prop\">{}</span>: {}",
                escape(f.property.name()),
                escape(&f.message)
            );
            if f.faults_before.is_empty() {
                let _ = write!(h, "<div class=\"faults\">no faults before</div>");
            } else {
                let _ = write!(h, "<div class=\"faults\">faults before:<ul>");
                for fault in &f.faults_before {
                    let _ = write!(h, "<li>{}</li>", escape(fault));
                }
                let _ = write!(h, "</ul></div>");
            }
            let _ = writeln!(h, "</li>");
        }
        let _ = writeln!(h, "</ol>");
    }

    let _ = writeln!(h, "<h2>Verdict</h2>");
    if !verdict.is_conclusive() {
        let _ = writeln!(
            h,
            "<p style=\"color:#b00\"><b>Inconclusive:</b> the run could not confirm what it was meant to show.</p>\n<ul>"
        );
        for why in &verdict.inconclusive {
            let _ = writeln!(h, "<li>{}</li>", escape(why));
        }
        let _ = writeln!(h, "</ul>");
    }
    let _ = writeln!(
        h,
        "<table>\n<tr><th>property</th><th>outcome</th><th>demands</th></tr>"
    );
    for p in Property::ALL {
        let (class, word) = match verdict.outcome(p) {
            Outcome::Holds => ("holds", "holds".to_string()),
            Outcome::Violated => {
                let n = verdict.findings.iter().filter(|f| f.property == p).count();
                ("violated", format!("VIOLATED ({n})"))
            }
        };
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td class=\"{class}\">{word}</td><td>{}</td></tr>",
            escape(p.name()),
            escape(p.describe())
        );
    }
    let _ = writeln!(h, "</table>");

    let _ = writeln!(h, "<h2>Faults</h2>");
    if model.faults.is_empty() {
        let _ = writeln!(h, "<p>No faults were injected.</p>");
    } else {
        let _ = writeln!(
            h,
            "<table>\n<tr><th></th><th>time</th><th>kind</th><th>fault</th></tr>"
        );
        for (i, f) in model.faults.iter().enumerate() {
            let kind = match &f.event {
                Event::Heal(_) => "healed",
                _ if f.observed() => "observed",
                _ => "injected",
            };
            let _ = writeln!(
                h,
                "<tr><td>F{}</td><td>{}</td><td>{kind}</td><td>{}</td></tr>",
                i + 1,
                ms3(f.t_us),
                escape(&f.description)
            );
        }
        let _ = writeln!(h, "</table>");
    }
    let _ = writeln!(h, "</body>\n</html>");
    h
}
