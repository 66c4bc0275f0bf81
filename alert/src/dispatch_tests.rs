#![allow(clippy::unwrap_used)]

use super::*;

fn labels(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn snap(name: &str, service: &str, starts: i64, ends: Option<i64>) -> Snapshot {
    let l = labels(&[("alertname", name), ("service", service)]);
    Snapshot {
        fingerprint: crate::state::fingerprint(&l),
        rule: name.into(),
        labels: l,
        annotations: labels(&[("summary", "s")]),
        starts_ms: starts,
        ends_ms: ends,
        muted: false,
    }
}

fn route(group_by: &[&str], wait: u64, interval: u64, repeat: u64) -> Route {
    let mut r = Route::root("team".into());
    r.timing = RouteTiming {
        group_by: group_by.iter().map(|s| s.to_string()).collect(),
        group_wait: Duration::from_millis(wait),
        group_interval: Duration::from_millis(interval),
        repeat_interval: Duration::from_millis(repeat),
    };
    r
}

fn opts() -> ReceiverOpts {
    [
        ("team".to_string(), (true, 0)),
        ("pager".to_string(), (true, 0)),
    ]
    .into_iter()
    .collect()
}

fn services(o: &Outgoing) -> Vec<(String, String)> {
    o.message
        .alerts
        .iter()
        .map(|a| (a.labels["service"].clone(), a.status.clone()))
        .collect()
}

#[test]
fn waits_groups_then_resolves() {
    let r = route(&["alertname"], 1_000, 5_000, 1_000_000);
    let mut d = Dispatcher::default();
    let a = snap("HighErrorRate", "payment", 0, None);
    assert!(
        d.tick(0, std::slice::from_ref(&a), &r, &opts(), "http://x")
            .is_empty()
    );
    let b = snap("HighErrorRate", "order", 500, None);
    let out = d.tick(1_000, &[a.clone(), b.clone()], &r, &opts(), "http://x");
    assert_eq!(out.len(), 1);
    let m = &out[0].message;
    assert_eq!(services(&out[0]).len(), 2);
    assert_eq!(m.status, "firing");
    assert_eq!(m.version, "4");
    assert_eq!(m.group_labels, labels(&[("alertname", "HighErrorRate")]));
    assert_eq!(m.common_labels, labels(&[("alertname", "HighErrorRate")]));
    assert_eq!(m.common_annotations, labels(&[("summary", "s")]));
    assert_eq!(m.group_key, "{}:{alertname=\"HighErrorRate\"}");
    assert_eq!(m.alerts[0].ends_at, ZERO_TIME);
    assert!(
        m.alerts[0]
            .generator_url
            .starts_with("http://x/api/v1/rules?name=")
    );
    // Unchanged: nothing more, even at the next interval.
    assert!(
        d.tick(6_000, &[a.clone(), b.clone()], &r, &opts(), "http://x")
            .is_empty()
    );
    // b resolves: told at the next interval, with its end time; then the group forgets it.
    let b_done = snap("HighErrorRate", "order", 500, Some(7_000));
    assert!(
        d.tick(7_000, &[a.clone(), b_done.clone()], &r, &opts(), "http://x")
            .is_empty()
    );
    let out = d.tick(
        11_000,
        &[a.clone(), b_done.clone()],
        &r,
        &opts(),
        "http://x",
    );
    assert_eq!(
        services(&out[0]),
        vec![
            ("payment".to_string(), "firing".to_string()),
            ("order".to_string(), "resolved".to_string())
        ]
    );
    assert_eq!(out[0].message.alerts[1].ends_at, rfc3339_ms(7_000));
    // a disappears from the input (its rule went away): it counts as resolved.
    let out = d.tick(16_000, &[], &r, &opts(), "http://x");
    assert_eq!(out[0].message.status, "resolved");
    assert!(d.groups.is_empty());
}

#[test]
fn repeats_and_skips_what_nobody_heard_of() {
    let r = route(&[], 0, 1_000, 10_000);
    let mut d = Dispatcher::default();
    let a = snap("X", "a", 0, None);
    assert_eq!(
        d.tick(0, std::slice::from_ref(&a), &r, &opts(), "").len(),
        1
    );
    assert!(
        d.tick(5_000, std::slice::from_ref(&a), &r, &opts(), "")
            .is_empty()
    );
    assert_eq!(
        d.tick(10_000, std::slice::from_ref(&a), &r, &opts(), "")
            .len(),
        1,
        "repeat"
    );
    // A second group fires and resolves within its group_wait: nobody is told.
    let r2 = route(&["service"], 5_000, 1_000, 10_000);
    let mut d2 = Dispatcher::default();
    let b = snap("X", "b", 0, None);
    assert!(
        d2.tick(0, std::slice::from_ref(&b), &r2, &opts(), "")
            .is_empty()
    );
    let b_done = snap("X", "b", 0, Some(1_000));
    assert!(d2.tick(6_000, &[b_done], &r2, &opts(), "").is_empty());
    assert!(d2.groups.is_empty());
}

#[test]
fn muted_alerts_are_left_out_and_come_back() {
    let r = route(&[], 0, 1_000, 1_000_000);
    let mut d = Dispatcher::default();
    let mut a = snap("X", "a", 0, None);
    a.muted = true;
    assert!(
        d.tick(0, std::slice::from_ref(&a), &r, &opts(), "")
            .is_empty()
    );
    assert!(
        d.tick(2_000, std::slice::from_ref(&a), &r, &opts(), "")
            .is_empty()
    );
    a.muted = false;
    let out = d.tick(3_000, std::slice::from_ref(&a), &r, &opts(), "");
    assert_eq!(out.len(), 1, "the silence expired");
    // Muted again, then back: told again.
    a.muted = true;
    assert!(
        d.tick(4_000, std::slice::from_ref(&a), &r, &opts(), "")
            .is_empty()
    );
    a.muted = false;
    assert_eq!(
        d.tick(5_000, std::slice::from_ref(&a), &r, &opts(), "")
            .len(),
        1
    );
}

#[test]
fn routes_by_matchers_with_continue_and_truncates() {
    let mut r = route(&["alertname"], 0, 1_000, 1_000_000);
    let mut page = Route::root("pager".into());
    page.id = 1;
    page.matchers = vec![CompiledMatcher::parse("service=~pay.*").unwrap()];
    page.timing = r.timing.clone();
    page.continue_ = true;
    let mut all = Route::root("team".into());
    all.id = 2;
    all.matchers = vec![CompiledMatcher::parse("alertname=X").unwrap()];
    all.timing = r.timing.clone();
    r.children = vec![page, all];
    let a = snap("X", "payment", 0, None);
    let b = snap("X", "order", 0, None);
    let mut o = opts();
    o.insert("team".into(), (true, 1));
    let mut d = Dispatcher::default();
    let mut out = d.tick(0, &[a, b], &r, &o, "");
    out.sort_by(|x, y| x.receiver.cmp(&y.receiver));
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].receiver, "pager");
    assert_eq!(
        services(&out[0]),
        vec![("payment".to_string(), "firing".to_string())]
    );
    assert_eq!(out[1].receiver, "team");
    assert_eq!(out[1].message.alerts.len(), 1);
    assert_eq!(out[1].message.truncated_alerts, 1);
    assert_eq!(
        out[1].message.group_key,
        "{}/{alertname=\"X\"}:{alertname=\"X\"}"
    );
}

#[test]
fn sibling_routes_with_the_same_matchers_each_notify_their_receiver() {
    let mut r = route(&["alertname"], 0, 1_000, 1_000_000);
    let mut twins = Vec::new();
    for (id, receiver) in [(1, "pager"), (2, "team")] {
        let mut c = Route::root(receiver.into());
        c.id = id;
        c.matchers = vec![CompiledMatcher::parse("service=payment").unwrap()];
        c.timing = r.timing.clone();
        c.continue_ = true;
        twins.push(c);
    }
    r.children = twins;
    let mut d = Dispatcher::default();
    let mut out = d.tick(0, &[snap("X", "payment", 0, None)], &r, &opts(), "");
    out.sort_by(|x, y| x.receiver.cmp(&y.receiver));
    let receivers: Vec<_> = out.iter().map(|o| o.receiver.as_str()).collect();
    assert_eq!(receivers, ["pager", "team"]);
    // Both show Alertmanager's group key, the same for both.
    for o in &out {
        assert_eq!(
            o.message.group_key,
            "{}/{service=\"payment\"}:{alertname=\"X\"}"
        );
    }
    // Resolving reaches both too.
    let mut out = d.tick(2_000, &[], &r, &opts(), "");
    out.sort_by(|x, y| x.receiver.cmp(&y.receiver));
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|o| o.message.status == "resolved"));
}

#[test]
fn inhibition_needs_source_target_and_equal_labels() {
    let rule = Inhibit {
        source: vec![CompiledMatcher::parse("alertname=AgentDown").unwrap()],
        target: vec![CompiledMatcher::parse("severity=warning").unwrap()],
        equal: vec!["host".into()],
    };
    let src = labels(&[("alertname", "AgentDown"), ("host", "web-1")]);
    let firing = [("fp1", &src)];
    let t1 = labels(&[
        ("alertname", "Slow"),
        ("severity", "warning"),
        ("host", "web-1"),
    ]);
    let t2 = labels(&[
        ("alertname", "Slow"),
        ("severity", "warning"),
        ("host", "web-2"),
    ]);
    let t3 = labels(&[
        ("alertname", "Slow"),
        ("severity", "page"),
        ("host", "web-1"),
    ]);
    assert_eq!(
        inhibited_by(std::slice::from_ref(&rule), &firing, &t1),
        vec!["fp1"]
    );
    assert!(inhibited_by(std::slice::from_ref(&rule), &firing, &t2).is_empty());
    assert!(inhibited_by(&[rule], &firing, &t3).is_empty());
}

#[test]
fn a_notice_that_could_not_be_queued_is_tried_again() {
    let r = route(&["alertname"], 0, 5_000, 1_000_000);
    let mut d = Dispatcher::default();
    let a = snap("HighErrorRate", "payment", 0, None);
    // Queues each notice when `ok`, returns what was offered.
    let round = |d: &mut Dispatcher, now: i64, alerts: &[Snapshot], ok: bool| {
        let mut offered = Vec::new();
        d.tick_with(now, alerts, &r, &opts(), "", |o| {
            offered.push(o.message.status.clone());
            ok
        });
        offered
    };
    // The firing notice cannot be queued (a full disk): it is offered again later.
    assert_eq!(
        round(&mut d, 0, std::slice::from_ref(&a), false),
        ["firing"]
    );
    assert_eq!(
        round(&mut d, 5_000, std::slice::from_ref(&a), true),
        ["firing"]
    );
    assert!(round(&mut d, 10_000, std::slice::from_ref(&a), true).is_empty());
    // The resolved notice fails too, and is not lost.
    let done = snap("HighErrorRate", "payment", 0, Some(12_000));
    assert_eq!(round(&mut d, 15_000, &[done], false), ["resolved"]);
    assert_eq!(round(&mut d, 20_000, &[], false), ["resolved"]);
    assert_eq!(round(&mut d, 25_000, &[], true), ["resolved"]);
    assert!(round(&mut d, 30_000, &[], true).is_empty());
    assert!(d.groups.is_empty());
}
