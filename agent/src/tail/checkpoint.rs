//! Checkpoints: how far each file has been read *and safely stored*, so a restart resumes
//! where it left off. Kept as a small JSON file written atomically (temporary file, fsync,
//! rename, fsync of the directory).

use super::fingerprint::FileId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The saved position of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Offset to resume from.
    pub offset: u64,
    /// Path where the file was last seen.
    pub path: String,
    /// When it was last set, in Unix seconds.
    pub updated: u64,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    id: FileId,
    #[serde(flatten)]
    cp: Checkpoint,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    files: Vec<Entry>,
}

/// Positions of files, by [`FileId`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoints {
    map: HashMap<FileId, Checkpoint>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Checkpoints {
    /// No positions.
    pub fn new() -> Checkpoints {
        Checkpoints::default()
    }

    /// Reads a checkpoint file. A missing file is empty; an unreadable or corrupt one is an
    /// error naming the file.
    pub fn load(path: &Path) -> Result<Checkpoints, String> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Checkpoints::new()),
            Err(e) => return Err(format!("{}: cannot read checkpoints: {e}", path.display())),
        };
        let disk: OnDisk = serde_json::from_slice(&text).map_err(|e| {
            format!(
                "{}: checkpoint file is corrupt ({e}); move it away to start over",
                path.display()
            )
        })?;
        if disk.version != 1 {
            return Err(format!(
                "{}: checkpoint file has unknown version {}",
                path.display(),
                disk.version
            ));
        }
        let map = disk.files.into_iter().map(|e| (e.id, e.cp)).collect();
        Ok(Checkpoints { map })
    }

    /// Writes the checkpoints atomically: a temporary file next to `path`, fsync, rename over
    /// `path`, fsync of the directory.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let err = |what: &str, e: std::io::Error| format!("{}: {what}: {e}", path.display());
        let mut files: Vec<Entry> = self
            .map
            .iter()
            .map(|(id, cp)| Entry {
                id: *id,
                cp: cp.clone(),
            })
            .collect();
        files.sort_by_key(|e| e.id);
        let json = serde_json::to_vec_pretty(&OnDisk { version: 1, files })
            .map_err(|e| format!("{}: cannot encode checkpoints: {e}", path.display()))?;
        skein_wal::durable::write_file(path, &json).map_err(|e| err("cannot save", e))
    }

    /// Records a position. The latest call wins: acknowledgements arrive in file order, so
    /// the offset only moves back when the file was truncated (copytruncate) and read again
    /// from its start.
    pub fn set(&mut self, id: FileId, offset: u64, path: &str) {
        let now = unix_now();
        match self.map.get_mut(&id) {
            Some(cp) => {
                cp.offset = offset;
                if cp.path != path {
                    cp.path = path.to_string();
                }
                cp.updated = now;
            }
            None => {
                self.map.insert(
                    id,
                    Checkpoint {
                        offset,
                        path: path.to_string(),
                        updated: now,
                    },
                );
            }
        }
    }

    /// The position of a file.
    pub fn get(&self, id: &FileId) -> Option<&Checkpoint> {
        self.map.get(id)
    }

    /// Every file's offset, as [`super::Tailer::new`] takes them.
    pub fn positions(&self) -> HashMap<FileId, u64> {
        self.map.iter().map(|(id, cp)| (*id, cp.offset)).collect()
    }

    /// Forgets files not set for longer than `older_than`.
    pub fn prune(&mut self, older_than: Duration) {
        let cutoff = unix_now().saturating_sub(older_than.as_secs());
        self.map.retain(|_, cp| cp.updated >= cutoff);
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn id(n: u64) -> FileId {
        FileId {
            dev: 1,
            ino: n,
            fp: u64::MAX - n,
        }
    }

    #[test]
    fn save_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("checkpoints.json");
        assert!(Checkpoints::load(&p).unwrap().is_empty());
        let mut c = Checkpoints::new();
        c.set(id(1), 100, "/var/log/a.log");
        c.set(id(2), 5, "/var/log/b.log");
        c.set(id(1), 50, "/var/log/a.log.1");
        assert_eq!(
            c.get(&id(1)).unwrap().offset,
            50,
            "the latest position wins (a truncated file starts over)"
        );
        assert_eq!(c.get(&id(1)).unwrap().path, "/var/log/a.log.1");
        c.save(&p).unwrap();
        assert!(!dir.path().join("checkpoints.json.tmp").exists());
        let back = Checkpoints::load(&p).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.positions(), HashMap::from([(id(1), 50), (id(2), 5)]));
        // Saving again replaces the file.
        c.set(id(2), 9, "/var/log/b.log");
        c.save(&p).unwrap();
        assert_eq!(
            Checkpoints::load(&p).unwrap().get(&id(2)).unwrap().offset,
            9
        );
    }

    #[test]
    fn corrupt_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cp.json");
        std::fs::write(&p, "{not json").unwrap();
        let e = Checkpoints::load(&p).unwrap_err();
        assert!(e.contains("cp.json") && e.contains("corrupt"), "{e}");
    }

    #[test]
    fn prune_forgets_old_entries() {
        let mut c = Checkpoints::new();
        c.set(id(1), 1, "a");
        c.set(id(2), 2, "b");
        if let Some(cp) = c.map.get_mut(&id(1)) {
            cp.updated -= 3600;
        }
        c.prune(Duration::from_secs(600));
        assert!(c.get(&id(1)).is_none());
        assert!(c.get(&id(2)).is_some());
        c.prune(Duration::from_secs(600));
        assert_eq!(c.len(), 1);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn any_positions_round_trip_through_the_file(
            files in proptest::collection::vec(
                (proptest::prelude::any::<(u64, u64, u64, u64)>(), "\\PC{0,60}"),
                0..30,
            ),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("checkpoints.json");
            let mut c = Checkpoints::new();
            for ((dev, ino, fp, offset), path) in files {
                c.set(FileId { dev, ino, fp }, offset, &path);
            }
            c.save(&p).unwrap();
            proptest::prop_assert_eq!(Checkpoints::load(&p).unwrap(), c);
        }

        #[test]
        fn any_file_content_loads_or_names_the_file(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("checkpoints.json");
            std::fs::write(&p, &bytes).unwrap();
            if let Err(e) = Checkpoints::load(&p) {
                proptest::prop_assert!(e.contains("checkpoints.json"), "{}", e);
            }
        }
    }
}
