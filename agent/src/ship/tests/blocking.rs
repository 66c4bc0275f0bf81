//! The shipper's async task never waits on the buffer's log lock, which an append holds
//! across its fsync: answers keep being acknowledged while the disk is slow.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_acknowledged_while_an_append_holds_the_log_lock() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, first) = buffer(dir.path(), 3);
    // Batch 0's answer waits until the log lock is taken; batches 1 and 2 are answered now.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let mut fake = Fake::new(&[], (200, None));
    fake.gate = Some((body(0), gate.clone()));
    let addr = fake.start().await;
    let run = ship(&buf, addr, fast_retry(), 4);
    until("batches 1 and 2 answered", || fake.delivered().len() == 2).await;

    // An append stuck in a slow fsync holds the log lock; so does this thread now, until
    // `release` is sent or dropped.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (held_tx, held) = tokio::sync::oneshot::channel();
    let b = buf.clone();
    let holder = std::thread::spawn(move || {
        let _guard = b.hold_log_lock();
        let _ = held_tx.send(());
        let _ = released.recv();
    });
    held.await.unwrap();
    gate.add_permits(1);
    // Before the fix, acknowledging (and the next read) took this lock on the async task:
    // the shipper stopped here until the fsync ended.
    until("every batch acknowledged while the lock is held", || {
        buf.cursor() == first + 3
    })
    .await;
    assert_eq!(
        run.acks(),
        (0..3)
            .map(|i| vec![(file(i), 100 * (i + 1))])
            .collect::<Vec<_>>(),
        "on_ack ran for each batch, in buffer order, with the lock held"
    );
    release.send(()).unwrap();
    holder.join().unwrap();

    // Once the lock is free the shipper reads again: a new batch goes out.
    let b = buf.clone();
    tokio::task::spawn_blocking(move || {
        b.append(
            Signal::Logs,
            1,
            &[(file(9), 900)],
            BodyEncoding::Identity,
            &body(9),
            false,
        )
    })
    .await
    .unwrap()
    .unwrap();
    until("the new batch acknowledged", || buf.cursor() == first + 4).await;
    let mut delivered = fake.delivered();
    delivered.sort();
    assert_eq!(
        delivered,
        vec![body(0), body(1), body(2), body(9)],
        "each batch delivered once"
    );
    run.stop().await;
}
