//! Tests of the outbox, on real files in a temporary directory.
#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::json;

fn limits() -> OutboxLimits {
    OutboxLimits::default()
}

fn body_n(n: &Notification) -> i64 {
    n.body["n"].as_i64().unwrap_or(-1)
}

#[test]
fn push_peek_done_fail_in_order_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Outbox::open(dir.path(), limits()).unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(ob.push("ops", json!({ "n": i })).unwrap());
    }
    ob.push("other team/é", json!({ "n": 100 })).unwrap();
    assert_eq!(ob.pending("ops"), 5);
    assert_eq!(ob.pending("nobody"), 0);
    let head = ob.peek("ops").unwrap().unwrap();
    assert_eq!(head.id, ids[0]);
    assert_eq!(head.receiver, "ops");
    assert_eq!(head.attempts, 0);
    ob.done("ops", &ids[0]).unwrap();
    ob.attempted("ops", &ids[1]).unwrap();
    ob.attempted("ops", &ids[1]).unwrap();
    ob.fail("ops", &ids[1], "HTTP 404 Not Found").unwrap();
    ob.attempted("ops", &ids[2]).unwrap();
    // Done twice is fine; fail of an unknown id is NotFound.
    ob.done("ops", &ids[0]).unwrap();
    assert_eq!(
        ob.fail("ops", &ids[0], "x").unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    drop(ob);

    let ob = Outbox::open(dir.path(), limits()).unwrap();
    assert_eq!(
        ob.receivers(),
        vec!["ops".to_string(), "other team/é".to_string()]
    );
    assert_eq!(ob.pending("ops"), 3);
    let head = ob.peek("ops").unwrap().unwrap();
    assert_eq!(head.id, ids[2]);
    assert_eq!(head.attempts, 1);
    assert_eq!(body_n(&head), 2);
    let failed = ob.failed("ops", 10);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, ids[1]);
    assert_eq!(failed[0].attempts, 2);
    assert_eq!(failed[0].reason, "HTTP 404 Not Found");
    assert!(failed[0].failed_ms >= failed[0].created_ms);
    // New ids continue after the highest sequence seen, and stay unique.
    let new_id = ob.push("ops", json!({ "n": 5 })).unwrap();
    assert!(!ids.contains(&new_id));
    let mut seen = Vec::new();
    while let Some(n) = ob.peek("ops").unwrap() {
        seen.push(body_n(&n));
        ob.done("ops", &n.id).unwrap();
    }
    assert_eq!(seen, vec![2, 3, 4, 5]);
    assert_eq!(
        body_n(&ob.peek("other team/é").unwrap().unwrap()),
        100,
        "other receiver untouched"
    );
}

#[test]
fn open_deletes_tmp_and_sets_aside_corrupt_files() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Outbox::open(dir.path(), limits()).unwrap();
    let a = ob.push("ops", json!({ "n": 0 })).unwrap();
    let b = ob.push("ops", json!({ "n": 1 })).unwrap();
    ob.push("ops", json!({ "n": 2 })).unwrap();
    drop(ob);
    let rdir = dir.path().join("ops");
    // Truncate the second file, leave a half-written tmp after the last.
    let second = rdir.join(format!("{:020}.json", 1));
    let bytes = fs::read(&second).unwrap();
    fs::write(&second, &bytes[..bytes.len() / 2]).unwrap();
    fs::write(rdir.join(format!("{:020}.tmp", 3)), b"{\"id\":").unwrap();

    let ob = Outbox::open(dir.path(), limits()).unwrap();
    assert!(!rdir.join(format!("{:020}.tmp", 3)).exists());
    assert!(rdir.join(format!("{:020}.bad", 1)).exists());
    assert_eq!(ob.pending("ops"), 2);
    let head = ob.peek("ops").unwrap().unwrap();
    assert_eq!(head.id, a);
    ob.done("ops", &a).unwrap();
    assert_eq!(body_n(&ob.peek("ops").unwrap().unwrap()), 2);
    assert_ne!(ob.peek("ops").unwrap().unwrap().id, b);
    // The sequence continues after the tmp file's number.
    let d = ob.push("ops", json!({ "n": 4 })).unwrap();
    assert!(d.starts_with("ops-4-"), "{d}");
}

#[test]
fn peek_sets_aside_a_file_corrupted_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Outbox::open(dir.path(), limits()).unwrap();
    ob.push("ops", json!({ "n": 0 })).unwrap();
    ob.push("ops", json!({ "n": 1 })).unwrap();
    fs::write(dir.path().join("ops").join(format!("{:020}.json", 0)), b"{").unwrap();
    assert_eq!(body_n(&ob.peek("ops").unwrap().unwrap()), 1);
    assert_eq!(ob.pending("ops"), 1);
}

#[test]
fn max_pending_drops_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Outbox::open(
        dir.path(),
        OutboxLimits {
            max_pending: 3,
            ..limits()
        },
    )
    .unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(ob.push("ops", json!({ "n": i })).unwrap());
    }
    assert_eq!(ob.pending("ops"), 3);
    assert_eq!(ob.dropped("ops"), 2);
    assert_eq!(body_n(&ob.peek("ops").unwrap().unwrap()), 2);
    // Done of a dropped id is not an error.
    ob.done("ops", &ids[0]).unwrap();
    drop(ob);
    let ob = Outbox::open(dir.path(), limits()).unwrap();
    assert_eq!(ob.pending("ops"), 3);
    assert_eq!(ob.dropped("ops"), 0);
}

#[test]
fn failed_is_bounded_oldest_deleted_first() {
    let dir = tempfile::tempdir().unwrap();
    let lim = OutboxLimits {
        max_failed: 2,
        ..limits()
    };
    let ob = Outbox::open(dir.path(), lim.clone()).unwrap();
    for i in 0..4 {
        let id = ob.push("ops", json!({ "n": i })).unwrap();
        ob.fail("ops", &id, &format!("reason {i}")).unwrap();
    }
    let reasons: Vec<String> = ob.failed("ops", 10).into_iter().map(|f| f.reason).collect();
    assert_eq!(reasons, vec!["reason 3", "reason 2"]);
    assert_eq!(ob.failed("ops", 1).len(), 1);
    assert_eq!(
        fs::read_dir(dir.path().join("ops").join("failed"))
            .unwrap()
            .count(),
        2
    );
    assert_eq!(ob.pending("ops"), 0);
    drop(ob);
    let ob = Outbox::open(dir.path(), lim).unwrap();
    let id = ob.push("ops", json!({ "n": 9 })).unwrap();
    assert!(id.starts_with("ops-4-"), "{id}");
    ob.fail("ops", &id, "reason 9").unwrap();
    let reasons: Vec<String> = ob.failed("ops", 10).into_iter().map(|f| f.reason).collect();
    assert_eq!(reasons, vec!["reason 9", "reason 3"]);
}

#[test]
fn big_body_and_bad_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Outbox::open(
        dir.path(),
        OutboxLimits {
            max_body_bytes: 100,
            ..limits()
        },
    )
    .unwrap();
    let err = ob.push("ops", json!({ "s": "x".repeat(200) })).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(
        ob.push("", json!({})).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(ob.pending("ops"), 0);
    assert!(ob.receivers().is_empty());
}

#[test]
fn names_round_trip() {
    for name in ["ops", "a.b", "..", "team/x", "é ü", "%41", "a-b_c"] {
        let enc = encode_name(name);
        assert!(
            enc.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"%_-".contains(&b))
        );
        assert_eq!(decode_name(&enc).as_deref(), Some(name));
    }
    assert_eq!(decode_name("%4"), None);
    assert_eq!(decode_name("a.b"), None);
    assert_eq!(decode_name("%61"), None, "not the canonical form of 'a'");
}

#[tokio::test]
async fn notified_wakes_after_push() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Outbox::open(dir.path(), limits()).unwrap();
    let notify = ob.notified("ops");
    let ob2 = ob.clone();
    // A push before anyone waits is kept as a permit.
    ob2.push("ops", json!({})).unwrap();
    notify.notified().await;
    assert_eq!(ob.pending("ops"), 1);
}
