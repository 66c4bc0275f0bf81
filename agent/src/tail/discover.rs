//! Finding a source's files: every path matching one of its `paths` globs and none of its
//! `exclude` globs (an exclude pattern may match the full path or only the file name, so
//! `*.gz` works).

use glob::Pattern;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The compiled globs of one source.
#[derive(Debug)]
pub struct Matcher {
    paths: Vec<String>,
    exclude: Vec<Pattern>,
}

impl Matcher {
    /// Compiles the `paths` and `exclude` globs.
    pub fn new(paths: &[String], exclude: &[String]) -> Result<Matcher, String> {
        for p in paths {
            Pattern::new(p).map_err(|e| format!("\"{p}\" is not a glob pattern: {e}"))?;
        }
        let exclude = exclude
            .iter()
            .map(|p| Pattern::new(p).map_err(|e| format!("\"{p}\" is not a glob pattern: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Matcher {
            paths: paths.to_vec(),
            exclude,
        })
    }

    /// Whether an exclude pattern matches the path or its file name.
    pub fn excluded(&self, path: &Path) -> bool {
        let name = path.file_name().map(Path::new);
        self.exclude
            .iter()
            .any(|p| p.matches_path(path) || name.is_some_and(|n| p.matches_path(n)))
    }

    /// Every matching path that exists now, sorted and without duplicates. Directories the
    /// globs cannot read are skipped.
    pub fn scan(&self) -> BTreeSet<PathBuf> {
        let mut out = BTreeSet::new();
        for pattern in &self.paths {
            let Ok(paths) = glob::glob(pattern) else {
                continue;
            };
            for entry in paths {
                match entry {
                    Ok(p) => {
                        if !self.excluded(&p) {
                            out.insert(p);
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "glob could not read a directory"),
                }
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_excludes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in [
            "a.log",
            "b.log",
            "a.log.1",
            "a.log.2.gz",
            "skip.log",
            "other.txt",
        ] {
            std::fs::write(d.join(f), "x\n").unwrap();
        }
        let m = Matcher::new(
            &[
                format!("{}/*.log", d.display()),
                format!("{}/*.log.*", d.display()),
            ],
            &["*.gz".into(), format!("{}/skip.log", d.display())],
        )
        .unwrap();
        let got: Vec<String> = m
            .scan()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(got, ["a.log", "a.log.1", "b.log"]);

        // A file appearing later is found by the next scan.
        std::fs::write(d.join("c.log"), "x\n").unwrap();
        assert!(m.scan().contains(&d.join("c.log")));
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert!(Matcher::new(&["/x/[".into()], &[]).is_err());
        assert!(Matcher::new(&["/x/*".into()], &["[".into()]).is_err());
    }
}
