//! `skein rules check`: rule files checked on this machine as the collector checks them,
//! Skein's TOML rules and Prometheus rule files (YAML) alike, with `promtool check rules`'s
//! output and exit codes: `<file>: N rules found` for each good file, each error as
//! `file:line: message` on stderr, exit 0 when every file is good and 1 otherwise.
//!
//! A `*.toml` file is a TOML rule file and any other file a Prometheus rule file; a directory
//! gives its `*.toml`, `*.yml` and `*.yaml` files. With no paths, the files the collector's
//! configuration names are checked (`alerts.rules` and `alerts.rule_files`).

use skein_alert::config::AlertsSection;
use skein_alert::promrules::{duplicate_rules, expand_rule_files, load_prom_file};
use skein_alert::rules::{load_file, rule_files};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Exit code of a check that found no error.
pub const CHECK_OK: u8 = 0;
/// Exit code of a check that found errors (as promtool's).
pub const CHECK_FAILED: u8 = 1;

/// A rule file and its format.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleFile {
    /// Skein's TOML rules.
    Toml(PathBuf),
    /// A Prometheus rule file.
    Prom(PathBuf),
}

fn by_name(path: PathBuf) -> RuleFile {
    match path.extension().is_some_and(|e| e == "toml") {
        true => RuleFile::Toml(path),
        false => RuleFile::Prom(path),
    }
}

/// The rule files of the paths given: a directory's `*.toml`, `*.yml` and `*.yaml` files (not
/// recursive, hidden files skipped, sorted), a file itself. A path that cannot be read is an
/// error naming it.
pub fn files_of(paths: &[PathBuf]) -> Result<Vec<RuleFile>, String> {
    let mut out = Vec::new();
    for p in paths {
        let err = |e: std::io::Error| format!("{}: cannot read the rule path: {e}", p.display());
        if !std::fs::metadata(p).map_err(err)?.is_dir() {
            out.push(by_name(p.clone()));
            continue;
        }
        let mut found = Vec::new();
        for entry in std::fs::read_dir(p).map_err(err)? {
            let path = entry.map_err(err)?.path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !hidden && ["toml", "yml", "yaml"].contains(&ext) && path.is_file() {
                found.push(path);
            }
        }
        found.sort();
        out.extend(found.into_iter().map(by_name));
    }
    Ok(out)
}

/// The rule files a collector configuration names: `alerts.rules` (TOML files and
/// directories) and `alerts.rule_files` (globs of Prometheus rule files). Err when the
/// configuration cannot be read; a named path that cannot be read is reported by the check.
pub fn configured(config: &Path) -> Result<(Vec<RuleFile>, Vec<String>), String> {
    let name = config.display();
    let text = std::fs::read_to_string(config).map_err(|e| format!("{name}: cannot read: {e}"))?;
    let section = AlertsSection::from_config_text(&text).map_err(|e| format!("{name}: {e}"))?;
    let mut files = Vec::new();
    let mut problems = Vec::new();
    match rule_files(&section.rules) {
        Ok(f) => files.extend(f.into_iter().map(RuleFile::Toml)),
        Err(e) => problems.push(e.to_string()),
    }
    match expand_rule_files(&section.rule_files) {
        Ok(f) => files.extend(f.into_iter().map(RuleFile::Prom)),
        Err(e) => problems.push(e.to_string()),
    }
    Ok((files, problems))
}

/// Checks the files; `known` tells which metric names TOML rules may use. Writes one line per
/// good file to `out`, the errors (and lint warnings) to `err`; returns the exit code.
pub fn check(
    files: &[RuleFile],
    known: &dyn Fn(&str) -> bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<u8> {
    if files.is_empty() {
        writeln!(err, "no rule files (*.toml, *.yml, *.yaml) found")?;
        return Ok(CHECK_FAILED);
    }
    let mut bad = 0;
    for f in files {
        let (path, result) = match f {
            RuleFile::Toml(p) => (p, load_file(p, known).map(|r| r.len())),
            RuleFile::Prom(p) => (
                p,
                load_prom_file(p).map(|groups| {
                    for w in duplicate_rules(&groups) {
                        let _ = writeln!(err, "warning: {w}");
                    }
                    groups.iter().map(|g| g.rules.len()).sum()
                }),
            ),
        };
        match result {
            Ok(n) => writeln!(out, "{}: {n} rules found", path.display())?,
            Err(errors) => {
                bad += 1;
                for e in errors {
                    writeln!(err, "{e}")?;
                }
            }
        }
    }
    Ok(if bad == 0 { CHECK_OK } else { CHECK_FAILED })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use skein_alert::rules::offline_known;

    fn run(files: &[RuleFile]) -> (u8, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = check(files, &offline_known, &mut out, &mut err).unwrap();
        let s = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (code, s(out), s(err))
    }

    #[test]
    fn shipped_rule_files_check_clean() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("alerts");
        let files = files_of(&[dir]).unwrap();
        let (code, out, err) = run(&files);
        assert_eq!(code, CHECK_OK, "{out}{err}");
        for f in [
            "demo.toml",
            "skein.toml",
            "demo.rules.yml",
            "skein.rules.yml",
        ] {
            assert!(out.contains(&format!("{f}: ")), "{f}: {out}");
        }
        assert!(out.contains("skein.rules.yml: 4 rules found"), "{out}");
    }

    #[test]
    fn errors_name_file_and_line_and_exit_1() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("a.toml"),
            "[[rule]]\nname = \"X\"\nfor = \"soon\"\n  [rule.logs]\n  when = \"> 1\"\n",
        )
        .unwrap();
        std::fs::write(
            d.join("b.rules.yml"),
            "groups:\n  - name: g\n    rules:\n      - record: a-b\n        expr: up\n",
        )
        .unwrap();
        std::fs::write(d.join("c.yaml"), "groups:\n  - name: g\n    rules:\n      - &r\n        alert: A\n        expr: up\n      - *r\n").unwrap();
        std::fs::write(d.join("notes.txt"), "not a rule file").unwrap();
        let files = files_of(&[d.to_path_buf()]).unwrap();
        assert_eq!(files.len(), 3, "{files:?}");
        let (code, out, err) = run(&files);
        assert_eq!(code, CHECK_FAILED);
        assert!(err.contains("a.toml:3:") && err.contains("soon"), "{err}");
        assert!(
            err.contains(
                "b.rules.yml:4: group \"g\", rule 1, \"a-b\": invalid recording rule name: a-b"
            ),
            "{err}"
        );
        assert!(
            err.contains("warning: ") && err.contains("repeats the rule"),
            "{err}"
        );
        assert_eq!(
            out.trim(),
            format!("{}: 2 rules found", d.join("c.yaml").display())
        );
        // A file named on the command line is checked whatever its name; a missing one is an
        // error.
        let (code, ..) = run(&[RuleFile::Prom(d.join("c.yaml"))]);
        assert_eq!(code, CHECK_OK);
        assert!(
            files_of(&[d.join("nope.yml")])
                .unwrap_err()
                .contains("nope.yml")
        );
        assert_eq!(run(&[]).0, CHECK_FAILED);
    }

    #[test]
    fn configured_files_come_from_the_alerts_section() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("rules")).unwrap();
        std::fs::write(d.join("rules/x.toml"), "").unwrap();
        std::fs::write(d.join("rules/y.rules.yml"), "groups: []\n").unwrap();
        let cfg = d.join("collector.toml");
        let text = format!(
            "data_dir = \"x\"\n[alerts]\nrules = [\"{r}\"]\nrule_files = [\"{r}/*.rules.yml\"]\n",
            r = d.join("rules").display()
        );
        std::fs::write(&cfg, text).unwrap();
        let (files, problems) = configured(&cfg).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            files,
            [
                RuleFile::Toml(d.join("rules/x.toml")),
                RuleFile::Prom(d.join("rules/y.rules.yml"))
            ]
        );
        std::fs::write(&cfg, "[alerts]\nrule_files = 5\n").unwrap();
        let e = configured(&cfg).unwrap_err();
        assert!(
            e.contains("collector.toml") && e.contains("key alerts"),
            "{e}"
        );
        std::fs::write(&cfg, "[server]\n").unwrap();
        assert!(configured(&cfg).unwrap().0.is_empty());
    }
}
