//! Dashboards: TOML files (`dashboards/`) that declare the panels of the metrics view, each a
//! query and a way to show it. Checked when read: a bad file is refused with its name, line
//! and reason, before the terminal is touched.

use serde::Deserialize;
use std::path::Path;

/// The dashboard shipped in `dashboards/default.toml`, built in.
pub const DEFAULT: &str = include_str!("../../dashboards/default.toml");

/// Most panels in one dashboard.
pub const MAX_PANELS: usize = 24;

/// How a panel shows its query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A chart of the series over the window (the first few when there are many).
    Line,
    /// One sparkline row per series.
    Sparkline,
    /// The last value of each series as a bar from 0 to 1.
    Gauge,
    /// The last value of each series.
    Table,
    /// The newest lines of a log search.
    Logs,
}

/// One panel.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    /// Title.
    pub title: String,
    /// How it is shown.
    pub kind: Kind,
    /// Metric name (every kind but logs).
    #[serde(default)]
    pub metric: Option<String>,
    /// Aggregation (default avg).
    #[serde(default)]
    pub agg: Option<String>,
    /// Group-by labels.
    #[serde(default)]
    pub by: Vec<String>,
    /// Label matchers.
    #[serde(default, rename = "match")]
    pub matchers: Vec<String>,
    /// The log search (kind logs).
    #[serde(default)]
    pub logs: Option<String>,
    /// How far back, such as `1h` (default: the view's window).
    #[serde(default)]
    pub window: Option<String>,
}

/// A dashboard.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dashboard {
    /// Its title.
    #[serde(default)]
    pub title: String,
    /// Panels, in order.
    #[serde(rename = "panel")]
    pub panels: Vec<Panel>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Reads a dashboard's text; `name` is used in errors (`name:line: reason`).
pub fn parse(name: &str, text: &str) -> Result<Dashboard, String> {
    let d: Dashboard = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
        format!("{name}:{line}: {}", e.message())
    })?;
    if d.panels.is_empty() {
        return Err(format!(
            "{name}:1: a dashboard needs at least one [[panel]]"
        ));
    }
    if d.panels.len() > MAX_PANELS {
        return Err(format!(
            "{name}:1: {} panels; a dashboard takes at most {MAX_PANELS}",
            d.panels.len()
        ));
    }
    // Semantic errors point at the panel's `[[panel]]` line.
    let titles: Vec<usize> = text
        .match_indices("[[panel]]")
        .map(|(i, _)| line_of(text, i))
        .collect();
    for (i, p) in d.panels.iter().enumerate() {
        let line = titles.get(i).copied().unwrap_or(0);
        let bad = |why: String| format!("{name}:{line}: panel \"{}\": {why}", p.title);
        match p.kind {
            Kind::Logs => {
                if p.logs.as_deref().is_none_or(|q| q.trim().is_empty()) {
                    return Err(bad("kind = \"logs\" needs logs = \"<search>\"".into()));
                }
                if p.metric.is_some() {
                    return Err(bad("a logs panel takes logs, not metric".into()));
                }
            }
            _ => {
                if p.metric.as_deref().is_none_or(|m| m.trim().is_empty()) {
                    return Err(bad("needs metric = \"<name>\"".into()));
                }
            }
        }
        if let Some(w) = &p.window {
            skein_model::time::parse_duration(w).map_err(|e| bad(format!("window: {e}")))?;
        }
        if let Some(a) = &p.agg {
            let ok = ["avg", "min", "max", "sum", "count", "rate", "increase"]
                .contains(&a.as_str())
                || a.strip_prefix('p')
                    .and_then(|n| n.parse::<f64>().ok())
                    .is_some_and(|n| n > 0.0 && n < 100.0);
            if !ok {
                return Err(bad(format!(
                    "agg \"{a}\" is not an aggregation: use avg, min, max, sum, count, rate, increase or pNN"
                )));
            }
        }
        for m in &p.matchers {
            if !m.contains('=') {
                return Err(bad(format!(
                    "match \"{m}\": write label=value, label!=value, label=~regex or label!~regex"
                )));
            }
        }
    }
    Ok(d)
}

/// Reads a dashboard file.
pub fn load(path: &Path) -> Result<Dashboard, String> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: cannot read: {e}"))?;
    parse(&name, &text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_dashboard_reads() {
        let d = parse("default.toml", DEFAULT).unwrap();
        assert!(d.panels.len() >= 5);
        assert!(d.panels.iter().any(|p| p.kind == Kind::Line));
        assert!(d.panels.iter().any(|p| p.kind == Kind::Logs));
    }

    #[test]
    fn bad_files_name_the_line_and_reason() {
        let cases = [
            (
                "[[panel]]\ntitle = \"a\"\nkind = \"pie\"\nmetric = \"x\"\n",
                ":3:",
                "pie",
            ),
            (
                "[[panel]]\ntitle = \"a\"\nkind = \"line\"\n",
                ":1:",
                "needs metric",
            ),
            (
                "title = \"t\"\n\n[[panel]]\ntitle = \"a\"\nkind = \"line\"\nmetric = \"x\"\nwindow = \"soon\"\n",
                ":3:",
                "window",
            ),
            (
                "[[panel]]\ntitle = \"a\"\nkind = \"logs\"\n",
                ":1:",
                "needs logs",
            ),
            (
                "[[panel]]\ntitle = \"a\"\nkind = \"line\"\nmetric = \"x\"\nagg = \"mean\"\n",
                ":1:",
                "agg",
            ),
            (
                "[[panel]]\ntitle = \"a\"\nkind = \"line\"\nmetric = \"x\"\ncolour = 1\n",
                ":5:",
                "colour",
            ),
            ("title = \"nothing\"\n", ":", "panel"),
            ("[[panel]\n", ":1:", ""),
        ];
        for (text, line, why) in cases {
            let e = parse("d.toml", text).unwrap_err();
            assert!(
                e.starts_with("d.toml") && e.contains(line) && e.contains(why),
                "{text:?}: {e}"
            );
        }
    }
}
