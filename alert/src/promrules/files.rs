//! `alerts.rule_files`: globs of Prometheus rule files (`alerts/*.rules.yml`), as
//! Prometheus's `rule_files` takes them. A pattern that matches nothing is no error (a
//! directory may be empty for now); a pattern that is not a glob, a match that is a directory
//! or cannot be read, is.

use super::PromGroup;
use super::parse::load_prom_file;
use crate::rule_types::RuleError;
use std::path::{Path, PathBuf};

/// The files the patterns match, in pattern order, sorted within a pattern, each once.
pub fn expand_rule_files(patterns: &[String]) -> Result<Vec<PathBuf>, RuleError> {
    let mut out: Vec<PathBuf> = Vec::new();
    for p in patterns {
        let at = Path::new(p);
        let paths = glob::glob(p).map_err(|e| {
            RuleError::new(
                at,
                0,
                format!("alerts.rule_files: {p:?} is not a valid glob: {e}"),
            )
        })?;
        let mut found = Vec::new();
        for entry in paths {
            let path = entry.map_err(|e| {
                let msg = format!("cannot read the rule path: {}", e.error());
                RuleError::new(e.path(), 0, msg)
            })?;
            if path.is_dir() {
                let msg = "a directory: alerts.rule_files takes files or globs such as alerts/*.rules.yml";
                return Err(RuleError::new(&path, 0, msg));
            }
            found.push(path);
        }
        found.sort();
        for f in found {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    Ok(out)
}

/// Expands the patterns and checks every file: all their groups, or every error of every
/// file.
pub fn load_rule_files(patterns: &[String]) -> Result<Vec<PromGroup>, Vec<RuleError>> {
    let files = expand_rule_files(patterns).map_err(|e| vec![e])?;
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    for f in &files {
        match load_prom_file(f) {
            Ok(g) => groups.extend(g),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}
