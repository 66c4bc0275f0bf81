//! The NATS test harness itself (tests/common/nats.rs): three real `nats-server`s form a
//! JetStream cluster, the two left keep a meta leader when one is killed, and the killed one
//! rejoins when it restarts on the same ports and store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::nats::NatsCluster;
use common::wait_for;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// How long the cluster may take to settle after a change (an election takes about 5 s).
const SETTLE: Duration = Duration::from_secs(30);

/// The meta leader server `i` names and the peers it knows (itself and its `replicas`), when
/// the meta group claims 3 servers (`cluster_size`).
fn meta(c: &NatsCluster, i: usize) -> Option<(String, BTreeSet<String>)> {
    let jsz = c.jsz(i)?;
    let m = &jsz["meta_cluster"];
    let leader = m["leader"].as_str().filter(|l| !l.is_empty())?.to_string();
    if m["cluster_size"].as_u64() != Some(3) {
        return None;
    }
    let mut peers: BTreeSet<String> = m["replicas"]
        .as_array()?
        .iter()
        .filter_map(|r| r["name"].as_str().map(String::from))
        .collect();
    peers.insert(c.name(i).to_string());
    Some((leader, peers))
}

/// The leader all of `servers` name, when they agree and each knows all 3 peers.
fn agreed_leader(c: &NatsCluster, servers: &[usize]) -> Option<String> {
    let all: BTreeSet<String> = ["n1", "n2", "n3"].map(String::from).into();
    let metas: Vec<_> = servers.iter().map(|&i| meta(c, i)).collect::<Option<_>>()?;
    let (leader, _) = metas.first()?.clone();
    metas
        .iter()
        .all(|(l, peers)| *l == leader && *peers == all)
        .then_some(leader)
}

/// Every server's `/jsz`, for failure messages.
fn jsz_all(c: &NatsCluster) -> String {
    (0..c.size())
        .map(|i| format!("{}: {}\n", c.name(i), c.jsz(i).unwrap_or_default()))
        .collect()
}

#[test]
fn three_servers_form_a_jetstream_cluster() {
    let started = Instant::now();
    let mut c = NatsCluster::start(3);
    eprintln!("3 servers ready in {:?}", started.elapsed());
    assert_eq!(c.urls().len(), 3);
    assert_eq!(c.url(0), c.urls()[0]);
    assert!(c.url(2).starts_with("nats://127.0.0.1:"), "{}", c.url(2));

    let everyone = [0, 1, 2];
    let mut leader = None;
    assert!(
        wait_for(
            || {
                leader = agreed_leader(&c, &everyone);
                leader.is_some()
            },
            SETTLE
        ),
        "the 3 servers do not name one meta leader and 3 peers:\n{}",
        jsz_all(&c)
    );
    let leader = leader.unwrap();
    let dead = (0..3).find(|&i| c.name(i) == leader).unwrap();

    // Killing the leader: the two left elect a new one among themselves.
    c.kill9(dead);
    let left: Vec<usize> = everyone.into_iter().filter(|&i| i != dead).collect();
    let killed = Instant::now();
    let mut new_leader = None;
    assert!(
        wait_for(
            || {
                new_leader = agreed_leader(&c, &left).filter(|l| *l != leader);
                new_leader.is_some()
            },
            SETTLE
        ),
        "after {leader} was killed the others do not agree on a new meta leader:\n{}",
        jsz_all(&c)
    );
    let new_leader = new_leader.unwrap();
    eprintln!(
        "{leader} killed; {new_leader} elected in {:?}",
        killed.elapsed()
    );

    // Restarted on the same ports and store, it rejoins: all 3 name one leader again, and that
    // leader is the restarted server or counts it as a current replica.
    c.restart(dead);
    assert!(c.is_running(dead));
    let rejoined = || {
        let Some(now) = agreed_leader(&c, &everyone) else {
            return false;
        };
        let lead = (0..3).find(|&i| c.name(i) == now).unwrap();
        let jsz = c.jsz(lead).unwrap_or_default();
        let replicas = jsz["meta_cluster"]["replicas"].as_array().cloned();
        now == leader
            || replicas.unwrap_or_default().iter().any(|r| {
                r["name"].as_str() == Some(leader.as_str()) && r["current"].as_bool() == Some(true)
            })
    };
    assert!(
        wait_for(rejoined, SETTLE),
        "{leader} did not rejoin the cluster:\n{}",
        jsz_all(&c)
    );
}
