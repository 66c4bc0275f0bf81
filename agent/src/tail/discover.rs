//! Finding a source's files: every path matching one of its `paths` globs and none of its
//! `exclude` globs (an exclude pattern may match the full path or only the file name, so
//! `*.gz` works).
//!
//! Links are followed only within a pattern's base directory: the leading part of the
//! pattern before the first component with a wildcard (`/var/log/app` for
//! `/var/log/app/*.log`; for a pattern without wildcards, the directory of the file it
//! names). A matched path whose real location, every link resolved, is outside that
//! directory is skipped with a warning, so whoever can write into a log directory cannot
//! make the agent ship `/etc/shadow` through a link. Links within it are read as usual.

use glob::Pattern;
use std::collections::{BTreeSet, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// Paths remembered as already warned about; past this the set starts over.
const MAX_WARNED: usize = 4096;

/// The compiled globs of one source.
#[derive(Debug)]
pub struct Matcher {
    paths: Vec<String>,
    exclude: Vec<Pattern>,
    /// Links out of their base already warned about.
    warned: Mutex<HashSet<PathBuf>>,
}

/// The directory a glob starts from: its components before the first one with a wildcard,
/// or for a pattern without wildcards the directory of the file it names.
fn glob_base(pattern: &str) -> PathBuf {
    let mut base = PathBuf::new();
    let mut wild = false;
    for c in Path::new(pattern).components() {
        if let Component::Normal(name) = c
            && name.to_string_lossy().contains(['*', '?', '['])
        {
            wild = true;
            break;
        }
        base.push(c);
    }
    if !wild {
        base.pop();
    }
    if base.as_os_str().is_empty() {
        base.push(".");
    }
    base
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
            warned: Mutex::default(),
        })
    }

    /// Whether an exclude pattern matches the path or its file name.
    pub fn excluded(&self, path: &Path) -> bool {
        let name = path.file_name().map(Path::new);
        self.exclude
            .iter()
            .any(|p| p.matches_path(path) || name.is_some_and(|n| p.matches_path(n)))
    }

    /// Whether `path`, every link resolved, is inside `real_base`. A path that leads nowhere
    /// (a dangling link, a file gone since the glob) is not; one that cannot be resolved for
    /// another reason (a loop of links, a directory it may not search) is passed on, so that
    /// opening it fails and is counted as a read error.
    fn within(&self, path: &Path, real_base: &Path) -> bool {
        let inside = match std::fs::canonicalize(path) {
            Ok(real) => real.starts_with(real_base),
            Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        };
        if !inside
            && path.is_symlink()
            && let Ok(mut w) = self.warned.lock()
        {
            if w.len() >= MAX_WARNED {
                w.clear();
            }
            if w.insert(path.to_path_buf()) {
                tracing::warn!(
                    path = %path.display(),
                    base = %real_base.display(),
                    "not following a link that leads out of the glob's base directory"
                );
            }
        }
        inside
    }

    /// Every matching path that exists now, sorted and without duplicates. Directories the
    /// globs cannot read are skipped, and so are paths that lead out of their pattern's
    /// base directory through a link.
    pub fn scan(&self) -> BTreeSet<PathBuf> {
        let mut out = BTreeSet::new();
        for pattern in &self.paths {
            let Ok(real_base) = std::fs::canonicalize(glob_base(pattern)) else {
                continue;
            };
            let Ok(paths) = glob::glob(pattern) else {
                continue;
            };
            for entry in paths {
                match entry {
                    Ok(p) => {
                        if !self.excluded(&p) && self.within(&p, &real_base) {
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
    fn symlinks_leading_out_of_the_glob_base_are_not_followed() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let logs = d.join("logs");
        let secret = d.join("secret");
        std::fs::create_dir_all(logs.join("app")).unwrap();
        std::fs::create_dir_all(&secret).unwrap();
        std::fs::write(logs.join("a.log"), "x\n").unwrap();
        std::fs::write(logs.join("app/b.log"), "x\n").unwrap();
        std::fs::write(secret.join("shadow.log"), "x\n").unwrap();
        // Within the base: followed.
        symlink(logs.join("a.log"), logs.join("inside.log")).unwrap();
        symlink(logs.join("app"), logs.join("app-link")).unwrap();
        // Out of it, by a file link and by a directory link: not followed.
        symlink(secret.join("shadow.log"), logs.join("evil.log")).unwrap();
        symlink(&secret, logs.join("escape")).unwrap();
        symlink("../../secret/shadow.log", logs.join("app/rel.log")).unwrap();
        let m = Matcher::new(
            &[
                format!("{}/*.log", logs.display()),
                format!("{}/*/*.log", logs.display()),
            ],
            &[],
        )
        .unwrap();
        let got: Vec<String> = m
            .scan()
            .iter()
            .map(|p| p.strip_prefix(&logs).unwrap().display().to_string())
            .collect();
        assert_eq!(
            got,
            ["a.log", "app/b.log", "app-link/b.log", "inside.log"],
            "links within logs/ are followed, links out of it are not"
        );

        // A base directory that is itself reached through a link is fine.
        let alias = d.join("alias");
        symlink(&logs, &alias).unwrap();
        let m = Matcher::new(&[format!("{}/*.log", alias.display())], &[]).unwrap();
        let got: Vec<String> = m
            .scan()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(got, ["a.log", "inside.log"]);
    }

    #[test]
    fn base_directories() {
        assert_eq!(glob_base("/var/log/app/*.log"), Path::new("/var/log/app"));
        assert_eq!(glob_base("/var/log/*/x.log"), Path::new("/var/log"));
        assert_eq!(glob_base("/var/log/a[12].log"), Path::new("/var/log"));
        assert_eq!(glob_base("/var/log/app.log"), Path::new("/var/log"));
        assert_eq!(glob_base("*.log"), Path::new("."));
        assert_eq!(glob_base("logs/*.log"), Path::new("logs"));
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert!(Matcher::new(&["/x/[".into()], &[]).is_err());
        assert!(Matcher::new(&["/x/*".into()], &["[".into()]).is_err());
    }
}
