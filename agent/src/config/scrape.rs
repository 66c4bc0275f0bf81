//! The `[[scrape]]` tables: Prometheus text format and OpenMetrics endpoints the agent scrapes
//! (node_exporter, app exporters), one job per table. The scraping itself is
//! [`crate::scrape`]; this file holds the keys, their defaults and bounds, and the checks that
//! name the key and the value of whatever is wrong.
//!
//! Every buffer a scrape uses is bounded here: `body_limit` (bytes of one answer, before and
//! after gzip), `sample_limit` (samples kept from one answer), `timeout` (one request), and
//! [`MAX_TARGETS`] (targets over every job).

use super::Dur;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

/// Default `sample_limit`.
pub const DEFAULT_SAMPLE_LIMIT: usize = 50_000;
/// Largest `sample_limit` allowed: a scrape's samples are held in memory until buffered.
pub const MAX_SAMPLE_LIMIT: usize = 1_000_000;
/// Default `body_limit`: 16 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 16 << 20;
/// Largest `body_limit` allowed: 256 MiB.
pub const MAX_BODY_LIMIT: usize = 256 << 20;
/// Least `body_limit` allowed: 1 KiB.
pub const MIN_BODY_LIMIT: usize = 1024;
/// Most targets over every `[[scrape]]` job together (each is one task).
pub const MAX_TARGETS: usize = 1000;
/// Shortest `interval`.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Default `interval`.
pub const DEFAULT_INTERVAL: Dur = Dur::secs(15);
/// Default `timeout` (or the interval, when that is shorter), as in Prometheus.
pub const DEFAULT_TIMEOUT: Dur = Dur::secs(10);

/// One `[[scrape]]` job: targets scraped alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The job's name, put on every sample as `job`. Required and unique.
    pub job: String,
    /// `host:port` (scraped at `http://host:port<metrics_path>`) or full `http://` /
    /// `https://` URLs (a URL without a path gets `metrics_path`).
    pub targets: Vec<String>,
    /// Time between two scrapes of a target. Default 15s, at least 1s.
    #[serde(default = "default_interval")]
    pub interval: Dur,
    /// Longest one scrape (connect, answer, whole body) may take; at most `interval`.
    /// Default 10s, or `interval` when that is shorter.
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Path scraped on `host:port` targets. Default `/metrics`.
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// Extra labels put on every sample (and on `up` and the other scrape series).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Regexes over the sample name (anchored at both ends, as in Prometheus relabelling):
    /// when any is given, only samples whose name matches one are kept.
    #[serde(default)]
    pub keep: Vec<String>,
    /// Regexes over the sample name (anchored): matching samples are dropped (after `keep`).
    #[serde(default)]
    pub drop: Vec<String>,
    /// Most samples one scrape may keep (after `keep` and `drop`); past it the scrape fails
    /// as in Prometheus: `up` = 0 and none of its samples is stored. Default 50,000, at most
    /// 1,000,000.
    #[serde(default = "default_sample_limit")]
    pub sample_limit: usize,
    /// Most bytes of one answer, both as sent and after gzip; past it the scrape fails.
    /// Default 16 MiB (16777216), 1 KiB to 256 MiB.
    #[serde(default = "default_body_limit")]
    pub body_limit: usize,
    /// With `https://` targets: a PEM file of CA certificates trusted besides the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// With `https://` targets: a PEM client certificate to present, with `client_key_file`.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// The PEM private key of `client_cert_file`.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// Do not check the targets' certificates. For tests only.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

fn default_interval() -> Dur {
    DEFAULT_INTERVAL
}
fn default_metrics_path() -> String {
    "/metrics".into()
}
fn default_sample_limit() -> usize {
    DEFAULT_SAMPLE_LIMIT
}
fn default_body_limit() -> usize {
    DEFAULT_BODY_LIMIT
}

/// One target of a job, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeTarget {
    /// What is fetched.
    pub url: reqwest::Url,
    /// The `instance` label: the target's `host:port` (the scheme's port when not written).
    pub instance: String,
}

impl ScrapeConfig {
    /// The timeout in force: the configured one, else 10s or the interval when shorter.
    pub fn timeout(&self) -> Duration {
        match self.timeout {
            Some(t) => t.0,
            None => DEFAULT_TIMEOUT.0.min(self.interval.0),
        }
    }

    /// The TLS settings of `https://` targets.
    pub fn tls(&self) -> skein_otlp::tls::ClientTls {
        skein_otlp::tls::ClientTls {
            ca_file: self.ca_file.clone(),
            client_cert_file: self.client_cert_file.clone(),
            client_key_file: self.client_key_file.clone(),
            insecure_skip_verify: self.insecure_skip_verify,
        }
    }

    /// The rustls config for the job's `https://` targets; None when it has none. `key` is
    /// the table's key (`scrape[0]`) for the error, which names the key and the file.
    pub fn tls_config(
        &self,
        key: &str,
    ) -> Result<Option<skein_otlp::tls::rustls::ClientConfig>, String> {
        let tls = self.tls();
        let https = self.targets.iter().any(|t| t.starts_with("https://"));
        if !https {
            if tls != skein_otlp::tls::ClientTls::default() {
                return Err(format!(
                    "key {key}: job \"{}\" has no https:// target, but TLS keys (ca_file, \
                     client_cert_file, client_key_file, insecure_skip_verify) are set",
                    self.job
                ));
            }
            return Ok(None);
        }
        skein_otlp::tls::client_config(&tls).map(Some).map_err(|e| {
            let which = match e.path() {
                Some(p) if Some(p) == self.ca_file.as_deref() => "ca_file",
                Some(p) if Some(p) == self.client_cert_file.as_deref() => "client_cert_file",
                Some(p) if Some(p) == self.client_key_file.as_deref() => "client_key_file",
                _ => "targets",
            };
            match e.path() {
                Some(p) => format!("key {key}.{which}: value \"{}\": {e}", p.display()),
                None => format!("key {key}.{which}: {e}"),
            }
        })
    }

    /// The targets as URLs with their `instance`; the error names the key and the value.
    pub fn resolve_targets(&self, key: &str) -> Result<Vec<ScrapeTarget>, String> {
        let mut out: Vec<ScrapeTarget> = Vec::with_capacity(self.targets.len());
        for t in &self.targets {
            let bad = |why: &str| format!("key {key}.targets: value \"{t}\" {why}");
            let text = if let Some((scheme, rest)) = t.split_once("://") {
                if !matches!(scheme, "http" | "https") {
                    return Err(bad("must be host:port or start with http:// or https://"));
                }
                if rest.contains('/') {
                    t.clone()
                } else {
                    format!("{t}{}", self.metrics_path)
                }
            } else {
                if t.contains('/') {
                    return Err(bad(
                        "is not host:port; write a full URL (http://host:port/path) for another path",
                    ));
                }
                format!("http://{t}{}", self.metrics_path)
            };
            let url = reqwest::Url::parse(&text)
                .map_err(|e| bad(&format!("is not host:port or a URL ({e})")))?;
            let host = match url.host_str() {
                Some(h) if !h.is_empty() => h,
                _ => return Err(bad("has no host")),
            };
            if !url.username().is_empty() || url.password().is_some() {
                return Err(bad(
                    "carries a user name or password, which is not supported",
                ));
            }
            let port = url
                .port_or_known_default()
                .ok_or_else(|| bad("has no port"))?;
            let instance = format!("{host}:{port}");
            if out.iter().any(|o| o.url == url) {
                return Err(bad("is listed twice"));
            }
            out.push(ScrapeTarget { url, instance });
        }
        Ok(out)
    }

    /// The `keep` and `drop` regexes, anchored at both ends.
    pub fn name_filters(
        &self,
        key: &str,
    ) -> Result<(Vec<regex::Regex>, Vec<regex::Regex>), String> {
        let compile = |which: &str, list: &[String]| {
            list.iter()
                .map(|re| {
                    regex::Regex::new(&format!("^(?:{re})$")).map_err(|e| {
                        format!(
                            "key {key}.{which}: value \"{re}\" is not a regular expression: {e}"
                        )
                    })
                })
                .collect::<Result<Vec<_>, String>>()
        };
        Ok((compile("keep", &self.keep)?, compile("drop", &self.drop)?))
    }

    /// Checks one table; `i` is its place among the `[[scrape]]` tables.
    pub fn validate(&self, i: usize) -> Result<(), String> {
        let key = format!("scrape[{i}]");
        if self.job.is_empty() || self.job.chars().any(char::is_control) {
            return Err(format!(
                "key {key}.job: value \"{}\" must be a name without control characters",
                self.job
            ));
        }
        if self.targets.is_empty() {
            return Err(format!(
                "key {key}.targets: job \"{}\" has no targets",
                self.job
            ));
        }
        if !self.metrics_path.starts_with('/') {
            return Err(format!(
                "key {key}.metrics_path: value \"{}\" must start with /",
                self.metrics_path
            ));
        }
        self.resolve_targets(&key)?;
        if self.interval.0 < MIN_INTERVAL {
            return Err(format!(
                "key {key}.interval: value {:?} is shorter than the least, 1s",
                self.interval
            ));
        }
        if let Some(t) = self.timeout {
            if t.0.is_zero() {
                return Err(format!("key {key}.timeout: value \"0s\" is not allowed"));
            }
            if t.0 > self.interval.0 {
                return Err(format!(
                    "key {key}.timeout: value {t:?} is longer than the interval ({:?})",
                    self.interval
                ));
            }
        }
        if !(1..=MAX_SAMPLE_LIMIT).contains(&self.sample_limit) {
            return Err(format!(
                "key {key}.sample_limit: value {} must be 1 to {MAX_SAMPLE_LIMIT}",
                self.sample_limit
            ));
        }
        if !(MIN_BODY_LIMIT..=MAX_BODY_LIMIT).contains(&self.body_limit) {
            return Err(format!(
                "key {key}.body_limit: value {} must be {MIN_BODY_LIMIT} to {MAX_BODY_LIMIT} bytes",
                self.body_limit
            ));
        }
        for (name, value) in &self.labels {
            if !valid_label_name(name) || name.starts_with("__") {
                return Err(format!(
                    "key {key}.labels: name \"{name}\" is not a label name (letters, digits and _, \
                     not starting with a digit or __)"
                ));
            }
            if matches!(name.as_str(), "job" | "instance") {
                return Err(format!(
                    "key {key}.labels: name \"{name}\" is set by the agent (job from the job, \
                     instance from the target)"
                ));
            }
            if value.is_empty() {
                return Err(format!(
                    "key {key}.labels.{name}: the value is empty (an empty label is no label)"
                ));
            }
        }
        self.name_filters(&key)?;
        self.tls_config(&key)?;
        Ok(())
    }
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks every `[[scrape]]` table, then what they must share: unique job names and at most
/// [`MAX_TARGETS`] targets in all.
pub fn validate_all(jobs: &[ScrapeConfig]) -> Result<(), String> {
    let mut names = HashSet::new();
    let mut targets = 0usize;
    for (i, j) in jobs.iter().enumerate() {
        j.validate(i)?;
        if !names.insert(j.job.as_str()) {
            return Err(format!(
                "key scrape[{i}].job: value \"{}\" is the name of another job",
                j.job
            ));
        }
        targets += j.targets.len();
        if targets > MAX_TARGETS {
            return Err(format!(
                "key scrape[{i}].targets: more than {MAX_TARGETS} targets in all jobs"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::config::AgentConfig;
    use std::time::Duration;

    fn job(extra: &str) -> String {
        format!("[[scrape]]\njob = \"node\"\ntargets = [\"127.0.0.1:9100\"]\n{extra}\n")
    }

    #[test]
    fn defaults_and_targets() {
        let cfg = AgentConfig::from_toml(
            "[[scrape]]\njob = \"node\"\ntargets = [\"127.0.0.1:9100\", \
             \"https://app.example:8443\", \"http://x/custom/path?a=b\"]\n\
             labels = { env = \"prod\" }\nkeep = [\"node_.*\"]\ninsecure_skip_verify = true\n",
        )
        .unwrap();
        let s = &cfg.scrapes[0];
        assert_eq!(s.interval.0, Duration::from_secs(15));
        assert_eq!(s.timeout(), Duration::from_secs(10));
        assert_eq!(s.sample_limit, 50_000);
        assert_eq!(s.body_limit, 16 << 20);
        let t = s.resolve_targets("scrape[0]").unwrap();
        assert_eq!(t[0].url.as_str(), "http://127.0.0.1:9100/metrics");
        assert_eq!(t[0].instance, "127.0.0.1:9100");
        assert_eq!(t[1].url.as_str(), "https://app.example:8443/metrics");
        assert_eq!(t[1].instance, "app.example:8443");
        assert_eq!(t[2].url.as_str(), "http://x/custom/path?a=b");
        assert_eq!(t[2].instance, "x:80");
        // A short interval without a timeout takes the interval as its timeout.
        let cfg = AgentConfig::from_toml(&job("interval = \"2s\"")).unwrap();
        assert_eq!(cfg.scrapes[0].timeout(), Duration::from_secs(2));
    }

    #[test]
    fn bad_values_name_key_and_value() {
        let cases = [
            (
                job("interval = \"5s\"\ntimeout = \"6s\""),
                "scrape[0].timeout",
                "6s",
            ),
            (job("interval = \"500ms\""), "scrape[0].interval", "500ms"),
            (job("sample_limit = 0"), "scrape[0].sample_limit", "0"),
            (job("body_limit = 10"), "scrape[0].body_limit", "10"),
            (job("keep = [\"(open\"]"), "scrape[0].keep", "(open"),
            (job("drop = [\"[z-a]\"]"), "scrape[0].drop", "[z-a]"),
            (job("labels = { job = \"x\" }"), "scrape[0].labels", "job"),
            (
                job("labels = { \"a-b\" = \"x\" }"),
                "scrape[0].labels",
                "a-b",
            ),
            (
                job("metrics_path = \"metrics\""),
                "scrape[0].metrics_path",
                "metrics",
            ),
            (
                job("ca_file = \"/no/ca.pem\""),
                "scrape[0]",
                "no https:// target",
            ),
            (job("colour = \"blue\""), "colour", "colour"),
            (
                "[[scrape]]\njob = \"a\"\ntargets = [\"ftp://x:1\"]".into(),
                "scrape[0].targets",
                "ftp://x:1",
            ),
            (
                "[[scrape]]\njob = \"a\"\ntargets = [\"x:1/p\"]".into(),
                "scrape[0].targets",
                "x:1/p",
            ),
            (
                "[[scrape]]\njob = \"a\"\ntargets = [\"x:notaport\"]".into(),
                "scrape[0].targets",
                "x:notaport",
            ),
            (
                "[[scrape]]\njob = \"a\"\ntargets = [\"x:1\", \"x:1\"]".into(),
                "scrape[0].targets",
                "listed twice",
            ),
            (
                "[[scrape]]\njob = \"a\"\ntargets = []".into(),
                "scrape[0].targets",
                "no targets",
            ),
            (
                "[[scrape]]\njob = \"\"\ntargets = [\"x:1\"]".into(),
                "scrape[0].job",
                "\"\"",
            ),
            (
                "[[scrape]]\njob = \"a\"\ntargets = [\"https://x:1\"]\nca_file = \"/no/ca.pem\""
                    .into(),
                "scrape[0].ca_file",
                "/no/ca.pem",
            ),
            (format!("{}{}", job(""), job("")), "scrape[1].job", "node"),
            ("[[scrape]]\ntargets = [\"x:1\"]".into(), "job", "job"),
        ];
        for (text, key, value) in cases {
            let e = AgentConfig::from_toml(&text).unwrap_err();
            assert!(
                e.contains(key) && e.contains(value),
                "{text:?} gave {e:?}, want {key:?} and {value:?}"
            );
        }
    }
}
