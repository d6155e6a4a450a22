//! Latency statistics, the result table (markdown / JSON) and SVG plots.

use std::collections::BTreeMap;
use std::fmt::Write;

/// Latency samples in microseconds.
#[derive(Default, Clone)]
pub struct Lat(pub Vec<u32>);

impl Lat {
    pub fn push(&mut self, d: std::time::Duration) {
        self.0.push(d.as_micros().min(u32::MAX as u128) as u32);
    }
    /// Percentile in milliseconds (0 when empty).
    pub fn pct_ms(&mut self, q: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.sort_unstable();
        let i = ((self.0.len() as f64 - 1.0) * q).round() as usize;
        self.0[i] as f64 / 1000.0
    }
    pub fn merge(&mut self, o: Lat) {
        self.0.extend(o.0);
    }
}

/// One measured figure of one target.
pub struct Metric {
    pub scenario: &'static str,
    pub name: String,
    pub unit: &'static str,
    pub higher_better: bool,
    pub value: f64,
    /// (plot id, x value) if this figure belongs on a plot.
    pub plot: Option<(&'static str, f64)>,
}

pub fn m(
    scenario: &'static str,
    name: impl Into<String>,
    unit: &'static str,
    hb: bool,
    value: f64,
) -> Metric {
    Metric {
        scenario,
        name: name.into(),
        unit,
        higher_better: hb,
        value,
        plot: None,
    }
}

type Values = BTreeMap<String, f64>;
type Row = (
    String,
    String,
    &'static str,
    bool,
    Values,
    Option<(&'static str, f64)>,
);
type Point<'a> = (f64, &'a Values, &'a str);

#[derive(Default)]
pub struct Report {
    /// (scenario, metric) -> (unit, higher_better, target -> value, plot)
    rows: Vec<Row>,
    pub notes: Vec<String>,
}

pub const TARGETS: [&str; 3] = ["dovecot-default", "dovecot-perf", "mailkeep"];

impl Report {
    pub fn add(&mut self, target: &str, x: Metric) {
        println!(
            "  [{target}] {} / {}: {} {}",
            x.scenario,
            x.name,
            fmt(x.value),
            x.unit
        );
        if let Some(r) = self
            .rows
            .iter_mut()
            .find(|r| r.0 == x.scenario && r.1 == x.name)
        {
            r.4.insert(target.to_string(), x.value);
            return;
        }
        let mut v = BTreeMap::new();
        v.insert(target.to_string(), x.value);
        self.rows.push((
            x.scenario.to_string(),
            x.name,
            x.unit,
            x.higher_better,
            v,
            x.plot,
        ));
    }

    /// Every target with a figure: the standard three first, then others (Mailkeep on
    /// PostgreSQL) in the order they were measured.
    fn targets(&self) -> Vec<String> {
        let mut v: Vec<String> = TARGETS.iter().map(|t| t.to_string()).collect();
        for r in &self.rows {
            for t in r.4.keys() {
                if !v.contains(t) {
                    v.push(t.clone());
                }
            }
        }
        v
    }

    /// The table when Mailkeep ran on PostgreSQL too: a column per target, and the ratios
    /// of each PostgreSQL configuration to the embedded store and to one node.
    fn markdown_stores(&self) -> String {
        let present: Vec<String> = self
            .targets()
            .into_iter()
            .filter(|t| self.rows.iter().any(|r| r.4.contains_key(t)))
            .collect();
        let mut ratios: Vec<(String, String)> = Vec::new();
        for t in present.iter().filter(|t| t.starts_with("mailkeep-pg-")) {
            if present.iter().any(|x| x == "mailkeep") {
                ratios.push((t.clone(), "mailkeep".into()));
            }
            let one = "mailkeep-pg-1node";
            if t != one && present.iter().any(|x| x == one) {
                ratios.push((t.clone(), one.into()));
            }
        }
        let short = |t: &str| t.strip_prefix("mailkeep-").unwrap_or(t).to_string();
        let mut s = String::from("| Scenario | Metric | Unit |");
        for t in &present {
            let _ = write!(s, " {t} |");
        }
        for (a, b) in &ratios {
            let _ = write!(s, " {} / {} |", short(a), short(b));
        }
        s.push_str("\n|---|---|---|");
        for _ in 0..present.len() + ratios.len() {
            s.push_str("---:|");
        }
        s.push('\n');
        for (sc, name, unit, hb, v, _) in &self.rows {
            let dir = if *hb { "↑" } else { "↓" };
            let _ = write!(s, "| {sc} | {name} | {unit} {dir} |");
            for t in &present {
                let _ = write!(s, " {} |", v.get(t).map_or("-".into(), |x| fmt(*x)));
            }
            for (a, b) in &ratios {
                let r = match (v.get(a), v.get(b)) {
                    (Some(x), Some(y)) if *y != 0.0 => format!("{:.2}x", x / y),
                    _ => "-".into(),
                };
                let _ = write!(s, " {r} |");
            }
            s.push('\n');
        }
        s.push_str("\n↑ higher is better, ↓ lower is better. Ratios are value / value.\n");
        s
    }

    pub fn markdown(&self) -> String {
        if self.targets().len() > TARGETS.len() {
            let mut s = self.markdown_stores();
            for n in &self.notes {
                let _ = writeln!(s, "\n- {n}");
            }
            return s;
        }
        let mut s = String::from(
            "| Scenario | Metric | Unit | Dovecot default | Dovecot perf | Mailkeep | MK / DC-default | MK / DC-perf |\n\
             |---|---|---|---:|---:|---:|---:|---:|\n",
        );
        for (sc, name, unit, hb, v, _) in &self.rows {
            let cell = |t: &str| match v.get(t) {
                Some(x) => fmt(*x),
                None if t == "mailkeep" => "pending".into(),
                None => "-".into(),
            };
            let ratio = |t: &str| match (v.get("mailkeep"), v.get(t)) {
                (Some(a), Some(b)) if *b != 0.0 => {
                    if (a / b).abs() < 0.1 {
                        format!("{:.4}x", a / b)
                    } else {
                        format!("{:.2}x", a / b)
                    }
                }
                _ => "-".into(),
            };
            let dir = if *hb { "↑" } else { "↓" };
            let _ = writeln!(
                s,
                "| {sc} | {name} | {unit} {dir} | {} | {} | {} | {} | {} |",
                cell(TARGETS[0]),
                cell(TARGETS[1]),
                cell(TARGETS[2]),
                ratio(TARGETS[0]),
                ratio(TARGETS[1])
            );
        }
        s.push_str(
            "\n↑ higher is better, ↓ lower is better. Ratios are Mailkeep value / Dovecot value.\n",
        );
        for n in &self.notes {
            let _ = writeln!(s, "\n- {n}");
        }
        s
    }

    pub fn json(&self) -> String {
        let mut s = String::from("{\n  \"results\": [\n");
        for (i, (sc, name, unit, hb, v, _)) in self.rows.iter().enumerate() {
            let vals: Vec<String> = v.iter().map(|(k, x)| format!("\"{k}\": {x}")).collect();
            let _ = write!(
                s,
                "    {{\"scenario\": {}, \"metric\": {}, \"unit\": {}, \"higher_is_better\": {hb}, \"values\": {{{}}}}}",
                js(sc),
                js(name),
                js(unit),
                vals.join(", ")
            );
            s.push_str(if i + 1 < self.rows.len() { ",\n" } else { "\n" });
        }
        let notes: Vec<String> = self.notes.iter().map(|n| js(n)).collect();
        let _ = write!(s, "  ],\n  \"notes\": [{}]\n}}\n", notes.join(", "));
        s
    }

    /// A simple line chart (one series per target) for every plot id present.
    pub fn svgs(&self) -> Vec<(String, String)> {
        let targets = self.targets();
        let mut plots: BTreeMap<&str, Vec<Point>> = BTreeMap::new();
        for (_, _, unit, _, v, p) in &self.rows {
            if let Some((id, x)) = p {
                plots.entry(id).or_default().push((*x, v, unit));
            }
        }
        plots
            .into_iter()
            .map(|(id, pts)| (id.to_string(), svg(id, &pts, &targets)))
            .collect()
    }
}

fn svg(id: &str, pts: &[Point], targets: &[String]) -> String {
    let (w, h, l, b) = (640.0, 400.0, 70.0, 50.0);
    let xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
    let (xmin, xmax) = (
        xs.iter().cloned().fold(f64::MAX, f64::min),
        xs.iter().cloned().fold(0.0, f64::max),
    );
    let ymax = pts
        .iter()
        .flat_map(|p| p.1.values())
        .cloned()
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.1;
    let unit = pts.first().map(|p| p.2).unwrap_or("");
    let px = |x: f64| l + (x - xmin) / (xmax - xmin).max(1e-9) * (w - l - 20.0);
    let py = |y: f64| h - b - y / ymax * (h - b - 40.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n\
         <line x1=\"{l}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/><line x1=\"{l}\" y1=\"40\" x2=\"{l}\" y2=\"{}\" stroke=\"black\"/>\n\
         <text x=\"15\" y=\"{}\" transform=\"rotate(-90 15 {})\" text-anchor=\"middle\">{}</text>\n",
        w / 2.0,
        esc(match id {
            "mixed-throughput" => "Mixed sessions: throughput (sessions/s) by client count",
            "idle-memory-per-connection" =>
                "Idle: server PSS per IDLE connection (KiB) by connections",
            _ => id,
        }),
        h - b,
        w - 20.0,
        h - b,
        h - b,
        h / 2.0,
        h / 2.0,
        esc(unit)
    );
    for i in 0..=4 {
        let y = ymax * i as f64 / 4.0;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            l - 5.0,
            py(y) + 4.0,
            fmt(y)
        );
    }
    for x in &xs {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            px(*x),
            h - b + 18.0,
            if x.fract() == 0.0 {
                format!("{x}")
            } else {
                fmt(*x)
            }
        );
    }
    let colors = [
        "#d62728", "#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
    ];
    for (ti, t) in targets.iter().enumerate() {
        let mut line: Vec<(f64, f64)> = pts
            .iter()
            .filter_map(|p| p.1.get(t).map(|y| (p.0, *y)))
            .collect();
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
        let c = colors[ti % colors.len()];
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" fill=\"{c}\">{t}{}</text>",
            l + 10.0,
            55.0 + 15.0 * ti as f64,
            if line.is_empty() { " (pending)" } else { "" }
        );
        if line.is_empty() {
            continue;
        }
        let path: Vec<String> = line
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        for (x, y) in &line {
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{c}\"/>",
                px(*x),
                py(*y)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

pub fn fmt(x: f64) -> String {
    if x == 0.0 || x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn js(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
