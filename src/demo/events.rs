//! The demo's running commentary: faults switched, notifications received, progress. Always
//! written to `<data>/events.log` (the agent tails it as service `skein-demo`, so the
//! dashboard's logs view shows faults and notifications among the services' lines), and
//! printed as well when headless.

use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

/// Where the lines go.
pub(crate) enum Sink {
    /// Standard output.
    Stdout,
    /// Standard error (when stdout carries the JSON summary).
    Stderr,
    /// A file (the dashboard owns the terminal).
    File(Mutex<std::fs::File>),
}

/// The commentary, with each line's time since the demo started.
pub(crate) struct Events {
    start: Instant,
    sink: Sink,
    /// The events file too, when `sink` is not it.
    also: Option<Mutex<std::fs::File>>,
}

impl Events {
    /// Lines to `sink` (and to `also`), timed from now.
    pub(crate) fn new(sink: Sink, also: Option<std::fs::File>) -> Events {
        Events {
            start: Instant::now(),
            sink,
            also: also.map(Mutex::new),
        }
    }

    /// Seconds since the start.
    pub(crate) fn elapsed_s(&self) -> u64 {
        self.start.elapsed().as_secs()
    }

    /// Writes one line, `[+12s] text`. Text from outside (alert annotations) is cleaned of
    /// control characters first.
    pub(crate) fn say(&self, text: &str) {
        let line = format!(
            "[+{}s] {}\n",
            self.elapsed_s(),
            skein_model::sanitize::sanitize(text)
        );
        match &self.sink {
            Sink::Stdout => {
                let mut o = std::io::stdout().lock();
                let _ = o.write_all(line.as_bytes());
                let _ = o.flush();
            }
            Sink::Stderr => {
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
            Sink::File(f) => {
                if let Ok(mut f) = f.lock() {
                    let _ = f.write_all(line.as_bytes());
                }
            }
        }
        if let Some(f) = &self.also
            && let Ok(mut f) = f.lock()
        {
            let _ = f.write_all(line.as_bytes());
        }
    }
}
