//! The raw NATS request/reply round trip that lattice RPC is measured
//! against: a plain async-nats responder answering with the request's
//! payload, and a plain requester, on the same server, in this process.

use futures_lite::StreamExt;
use std::time::{Duration, Instant};

/// A plain async-nats client of `url`, trusting `tls_ca` when given.
pub async fn connect(
    url: &str,
    tls_ca: Option<&std::path::Path>,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    let options = async_nats::ConnectOptions::new();
    let options = match tls_ca {
        Some(ca) => options.add_root_certificates(ca.to_path_buf()),
        None => options,
    };
    options.connect(url).await
}

/// A responder on its own thread and runtime, and a requester.
pub struct RawNats {
    rt: tokio::runtime::Runtime,
    client: async_nats::Client,
    subject: String,
    _responder: tokio::runtime::Runtime,
}

impl RawNats {
    /// Connects both sides to `url`. Panics on failure: callers are benchmarks.
    pub fn start(url: &str) -> RawNats {
        Self::start_tls(url, None)
    }

    /// As [`start`](Self::start), trusting `tls_ca` for the server's
    /// certificate.
    pub fn start_tls(url: &str, tls_ca: Option<&std::path::Path>) -> RawNats {
        let subject = format!("wascc.bench.raw.{}", std::process::id());
        let responder = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let client = responder
            .block_on(connect(url, tls_ca))
            .expect("connect responder");
        let mut sub = responder
            .block_on(client.subscribe(subject.clone()))
            .expect("subscribe");
        responder.spawn(async move {
            while let Some(msg) = sub.next().await {
                if let Some(reply) = msg.reply {
                    let _ = client.publish(reply, msg.payload).await;
                }
            }
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = rt
            .block_on(connect(url, tls_ca))
            .expect("connect requester");
        rt.block_on(client.flush()).expect("flush");
        RawNats {
            rt,
            client,
            subject,
            _responder: responder,
        }
    }

    /// The subject the responder answers on.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Makes `n` requests one after another; returns the time they took.
    pub fn round_trips(&self, n: u64) -> Duration {
        self.round_trips_each(n, |_| {})
    }

    /// As [`round_trips`](Self::round_trips), telling `each` how long each
    /// request took.
    pub fn round_trips_each(&self, n: u64, mut each: impl FnMut(Duration)) -> Duration {
        let payload = bytes::Bytes::from_static(&[0xa1, b'x']);
        self.rt.block_on(async {
            let started = Instant::now();
            for _ in 0..n {
                let sent = Instant::now();
                self.client
                    .request(self.subject.clone(), payload.clone())
                    .await
                    .expect("raw NATS request");
                each(sent.elapsed());
            }
            started.elapsed()
        })
    }
}
