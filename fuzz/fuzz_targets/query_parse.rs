//! The `q` of `/api/v1/logs` and the live tail: the log query builder (shape check, then
//! the query parser), run as a search runs it, on a thread with the 2 MiB stack of a
//! blocking worker, so that deep recursion shows as a crash here and not in production.
#![no_main]
use libfuzzer_sys::fuzz_target;
use skein_store::schema::LogFields;
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

struct Worker {
    to: SyncSender<String>,
    from: std::sync::Mutex<Receiver<()>>,
}

fn worker() -> &'static Worker {
    static W: OnceLock<Worker> = OnceLock::new();
    W.get_or_init(|| {
        let (to, rx) = sync_channel::<String>(0);
        let (done, from) = sync_channel::<()>(0);
        std::thread::Builder::new()
            .name("query".into())
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                let fields = LogFields::new();
                for text in rx {
                    let _ = skein_store::fuzzing::log_query(&fields, &text);
                    if done.send(()).is_err() {
                        return;
                    }
                }
            })
            .expect("query thread");
        Worker {
            to,
            from: std::sync::Mutex::new(from),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    // The shape check refuses anything over 16 KiB before parsing; a little past it is enough.
    if data.len() > 20 * 1024 {
        return;
    }
    let text = String::from_utf8_lossy(data).into_owned();
    let w = worker();
    w.to.send(text).expect("query thread alive");
    w.from
        .lock()
        .expect("lock")
        .recv()
        .expect("query thread alive");
});
