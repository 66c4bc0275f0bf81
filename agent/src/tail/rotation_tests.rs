//! Tests of the [`Tailer`](super::Tailer) through rotation, truncation, deletion and
//! restarts, on real files.

#![allow(clippy::unwrap_used)]

use super::fingerprint::identify;
use super::tests::{append, drain, metric, source, tailer, texts};
use super::*;
use crate::config::ReadFrom;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::time::Duration;

#[test]
fn rename_rotation_reads_the_old_file_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.log");
    let mut old = File::create(&p).unwrap();
    old.write_all(b"a1\na2\n").unwrap();
    let (mut t, tel) = tailer(
        vec![source("s", &[&p], ReadFrom::Beginning)],
        HashMap::new(),
    );
    t.set_close_grace(Duration::from_millis(300));
    assert_eq!(texts(&drain(&mut t)), ["a1", "a2"]);
    let old_id = t.files()[0].2;

    std::fs::rename(&p, dir.path().join("app.log.1")).unwrap();
    old.write_all(b"a3 after rename\n").unwrap();
    std::fs::write(&p, "b1\n").unwrap();
    let out = drain(&mut t);
    assert_eq!(texts(&out), ["a3 after rename", "b1"]);
    assert_eq!(out[0].file, old_id);
    assert_ne!(out[1].file, old_id);
    assert_eq!(t.files().len(), 2);
    assert_eq!(
        metric(
            &tel,
            "skein_agent_rotations_total{source=\"s\",kind=\"rename\"}"
        ),
        1
    );

    // Still within the grace period: late writes and a final line without newline.
    old.write_all(b"a4\na5 no newline").unwrap();
    assert_eq!(texts(&drain(&mut t)), ["a4"]);
    std::thread::sleep(Duration::from_millis(400));
    let out = drain(&mut t);
    assert_eq!(texts(&out), ["a5 no newline"]);
    assert_eq!(out[0].end_offset, 6 + 16 + 3 + 13);
    let files = t.files();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].1, p.to_str().unwrap());
    assert_eq!(metric(&tel, "skein_agent_files_open"), 1);
}

#[test]
fn same_file_at_two_paths_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.log");
    std::fs::write(&p, "l1\nl2\n").unwrap();
    std::fs::hard_link(&p, dir.path().join("app.log.bak")).unwrap();
    let (mut t, tel) = tailer(
        vec![source(
            "s",
            &[&dir.path().join("app.log*")],
            ReadFrom::Beginning,
        )],
        HashMap::new(),
    );
    assert_eq!(texts(&drain(&mut t)), ["l1", "l2"]);
    assert_eq!(t.files().len(), 1);

    // Renamed within the glob: same file, new path, nothing read again.
    std::fs::remove_file(dir.path().join("app.log.bak")).unwrap();
    let p1 = dir.path().join("app.log.1");
    std::fs::rename(&p, &p1).unwrap();
    append(&p1, b"l3\n");
    let out = drain(&mut t);
    assert_eq!(texts(&out), ["l3"]);
    assert_eq!(&*out[0].path, p1.to_str().unwrap());
    assert_eq!(t.files()[0].1, p1.to_str().unwrap());
    assert_eq!(
        metric(
            &tel,
            "skein_agent_rotations_total{source=\"s\",kind=\"rename\"}"
        ),
        1
    );
}

#[test]
fn copytruncate_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.log");
    std::fs::write(&p, "hello\nworld, a long line\n").unwrap();
    let (mut t, tel) = tailer(
        vec![source("s", &[&p], ReadFrom::Beginning)],
        HashMap::new(),
    );
    assert_eq!(drain(&mut t).len(), 2);
    let id = t.files()[0].2;

    // Same first line after the truncation: same identity, found by size.
    std::fs::copy(&p, dir.path().join("app.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(0)
        .unwrap();
    assert!(drain(&mut t).is_empty());
    append(&p, b"hello\n");
    let out = drain(&mut t);
    assert_eq!(texts(&out), ["hello"]);
    assert_eq!((out[0].file, out[0].end_offset), (id, 6));
    assert_eq!(
        metric(
            &tel,
            "skein_agent_rotations_total{source=\"s\",kind=\"truncate\"}"
        ),
        1
    );

    // Truncated and written past the old offset before a scan: found by fingerprint.
    OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&p, b"rewritten first\nsecond\n");
    let out = drain(&mut t);
    assert_eq!(texts(&out), ["rewritten first", "second"]);
    assert_ne!(out[0].file, id);
    assert_eq!(out[0].file.dev_ino(), id.dev_ino());
    assert_eq!(
        metric(
            &tel,
            "skein_agent_rotations_total{source=\"s\",kind=\"truncate\"}"
        ),
        2
    );
}

#[test]
fn resume_from_positions_and_inode_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    std::fs::write(&p, "one\ntwo\nthree\n").unwrap();
    let id = identify(&File::open(&p).unwrap()).unwrap().unwrap();
    let src = || vec![source("s", &[&p], ReadFrom::End)];

    let (mut t, _) = tailer(src(), HashMap::from([(id, 4)]));
    assert_eq!(texts(&drain(&mut t)), ["two", "three"]);

    // An offset past the end: the file was truncated meanwhile.
    let (mut t, _) = tailer(src(), HashMap::from([(id, 1000)]));
    assert_eq!(texts(&drain(&mut t)), ["one", "two", "three"]);

    // Same device and inode, other first line: another file, the position is not used.
    let reused = FileId {
        fp: id.fp ^ 1,
        ..id
    };
    let mut s = src();
    s[0].read_from = ReadFrom::Beginning;
    let (mut t, _) = tailer(s, HashMap::from([(reused, 8)]));
    assert_eq!(texts(&drain(&mut t)), ["one", "two", "three"]);
}

#[test]
fn deleted_file_is_read_to_its_end_then_closed() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.log");
    let mut w = File::create(&p).unwrap();
    w.write_all(b"x1\n").unwrap();
    let (mut t, _) = tailer(
        vec![source(
            "s",
            &[&dir.path().join("*.log")],
            ReadFrom::Beginning,
        )],
        HashMap::new(),
    );
    t.set_close_grace(Duration::from_millis(300));
    assert_eq!(texts(&drain(&mut t)), ["x1"]);
    std::fs::remove_file(&p).unwrap();
    w.write_all(b"x2\n").unwrap();
    assert_eq!(texts(&drain(&mut t)), ["x2"]);
    assert_eq!(t.files().len(), 1);
    std::thread::sleep(Duration::from_millis(400));
    assert!(drain(&mut t).is_empty());
    assert!(t.files().is_empty());
}
