//! `merge`: combines results JSON files of several runs (later files win) into one table,
//! JSON and plots — e.g. a Dovecot-only run and a later Mailkeep-only run of a scenario.

use crate::report::{Metric, Report};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Extracts the JSON string value after `"key": `.
fn str_field(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("\"{key}\": \""))? + key.len() + 5;
    let mut out = String::new();
    let mut esc = false;
    for c in line[start..].chars() {
        match (esc, c) {
            (true, c) => {
                out.push(c);
                esc = false;
            }
            (false, '\\') => esc = true,
            (false, '"') => return Some(out),
            (false, c) => out.push(c),
        }
    }
    None
}

/// The plot a metric belongs to, derived from its name.
fn plot_of(scenario: &str, metric: &str) -> Option<(&'static str, f64)> {
    let n: f64 = metric.split_whitespace().next()?.parse().ok()?;
    match scenario {
        "mixed" if metric.ends_with("clients: sessions/s") => Some(("mixed-throughput", n)),
        "idle" if metric.ends_with("idlers: PSS per connection") => {
            Some(("idle-memory-per-connection", n))
        }
        _ => None,
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

pub fn run(files: &[PathBuf], out: &Path, name: &str) -> Result<()> {
    let mut report = Report::default();
    for f in files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        for line in text.lines().filter(|l| l.contains("\"scenario\"")) {
            let (Some(sc), Some(metric), Some(unit)) = (
                str_field(line, "scenario"),
                str_field(line, "metric"),
                str_field(line, "unit"),
            ) else {
                continue;
            };
            let hb = line.contains("\"higher_is_better\": true");
            let Some(vals) = line.split("\"values\": {").nth(1) else {
                continue;
            };
            for kv in vals.trim_end_matches(['}', ',', ' ']).split(", ") {
                let mut it = kv.splitn(2, ": ");
                let (Some(k), Some(v)) = (it.next(), it.next()) else {
                    continue;
                };
                let Ok(value) = v.trim().parse::<f64>() else {
                    continue;
                };
                let sc = leak(sc.clone());
                let x = Metric {
                    scenario: sc,
                    name: metric.clone(),
                    unit: leak(unit.clone()),
                    higher_better: hb,
                    value,
                    plot: plot_of(sc, &metric),
                };
                report.add(k.trim_matches('"'), x);
            }
        }
        if let Some(notes) = text.split("\"notes\": [").nth(1) {
            let notes = notes
                .trim_end()
                .trim_end_matches('}')
                .trim_end()
                .trim_end_matches(']');
            for n in notes.split("\", \"") {
                let n = n
                    .trim_matches('"')
                    .replace("\\\"", "\"")
                    .replace("\\\\", "\\");
                if !n.is_empty() {
                    report.notes.push(format!("[{}] {n}", f.display()));
                }
            }
        }
    }
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join(format!("{name}.md")), report.markdown())?;
    std::fs::write(out.join(format!("{name}.json")), report.json())?;
    for (id, svg) in report.svgs() {
        std::fs::write(out.join(format!("{id}.svg")), svg)?;
    }
    println!("{}", report.markdown());
    Ok(())
}
