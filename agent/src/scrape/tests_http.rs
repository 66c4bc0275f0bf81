//! Tests of one scrape's HTTP exchange against a local server: the headers sent, gzip,
//! statuses, encodings and bodies over `body_limit` (sent whole, announced, or endless).

use super::fetch::fetch;
use super::*;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use std::sync::Mutex;

const LIMIT: usize = 64 * 1024;

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A server on a free port; its base URL and the headers of the last request.
async fn server() -> (String, Arc<Mutex<Option<HeaderMap>>>) {
    let seen: Arc<Mutex<Option<HeaderMap>>> = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move |h: HeaderMap| {
                let s = s.clone();
                async move {
                    *s.lock().unwrap() = Some(h);
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        "# TYPE up_time gauge\nup_time 5\n",
                    )
                }
            }),
        )
        .route(
            "/om",
            get(|| async {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    "# TYPE c counter\nc_total 3 1700000000.5\n# EOF\n",
                )
            }),
        )
        .route(
            "/gzip",
            get(|| async {
                (
                    [(header::CONTENT_ENCODING, "gzip")],
                    gzip(b"a 1\nb{x=\"y\"} 2\n"),
                )
            }),
        )
        .route(
            "/brotli",
            get(|| async { ([(header::CONTENT_ENCODING, "br")], "a 1\n") }),
        )
        .route(
            "/missing",
            get(|| async { (StatusCode::NOT_FOUND, "no such page") }),
        )
        .route("/big", get(|| async { "x 1\n".repeat(LIMIT) }))
        .route(
            "/endless",
            get(|| async {
                let chunk = bytes::Bytes::from("y 1\n".repeat(2048));
                Body::from_stream(futures::stream::repeat_with(move || {
                    Ok::<_, std::io::Error>(chunk.clone())
                }))
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (format!("http://{addr}"), seen)
}

fn url(base: &str, path: &str) -> reqwest::Url {
    reqwest::Url::parse(&format!("{base}{path}")).unwrap()
}

#[tokio::test]
async fn a_scrape_sends_prometheus_headers_and_reads_both_formats_and_gzip() {
    let (base, seen) = server().await;
    let client = reqwest::Client::new();
    let t = Duration::from_secs(10);
    let f = fetch(&client, &url(&base, "/metrics"), t, LIMIT)
        .await
        .unwrap();
    let h = seen.lock().unwrap().clone().unwrap();
    assert_eq!(h.get(header::ACCEPT).unwrap(), ACCEPT);
    assert_eq!(h.get(header::ACCEPT_ENCODING).unwrap(), "gzip");
    assert_eq!(h.get("x-prometheus-scrape-timeout-seconds").unwrap(), "10");
    let cfg = AgentConfig::from_toml("[[scrape]]\njob = \"j\"\ntargets = [\"h:1\"]\n").unwrap();
    let job = Job::new(&cfg.scrapes[0], 0).unwrap();
    let target = Target::new(Arc::new(job), url(&base, "/metrics"), "h:1");
    let o = process(&target, Ok(f), Instant::now(), 1, 1 << 20);
    assert_eq!((o.error, o.report.kept), (None, 1));

    let f = fetch(&client, &url(&base, "/om"), t, LIMIT).await.unwrap();
    let o = process(&target, Ok(f), Instant::now(), 1, 1 << 20);
    assert_eq!(
        (o.error, o.report.scraped),
        (None, 1),
        "an OpenMetrics answer"
    );

    let f = fetch(&client, &url(&base, "/gzip"), t, LIMIT)
        .await
        .unwrap();
    assert!(f.gzip);
    let o = process(&target, Ok(f), Instant::now(), 1, 1 << 20);
    assert_eq!((o.error, o.report.scraped), (None, 2), "a gzip answer");
}

#[tokio::test]
async fn bad_answers_fail_with_a_clear_reason() {
    let (base, _) = server().await;
    let client = reqwest::Client::new();
    let t = Duration::from_secs(10);
    let cases = [
        ("/missing", "HTTP status 404"),
        ("/brotli", "Content-Encoding \"br\""),
        ("/big", "body_limit"),
        ("/endless", "body_limit"),
    ];
    for (path, want) in cases {
        let e = fetch(&client, &url(&base, path), t, LIMIT)
            .await
            .unwrap_err();
        assert!(e.contains(want), "{path}: {e}");
    }
    // Nobody listening: the reason says so.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let e = fetch(&client, &url(&closed, "/metrics"), t, LIMIT)
        .await
        .unwrap_err();
    assert!(e.to_lowercase().contains("connect"), "{e}");
}
