//! Lattice state in JetStream key-value buckets, not scatter-gather: a
//! query reads the bucket and never waits out a timeout for answers that
//! may not come.
//!
//! Bucket `wascc_v1_<lattice>_hosts`: one entry per host, keyed by its
//! server key, holding a [`HostRecord`] in JSON. The bucket keeps one value
//! per key and drops values older than [`HOST_TTL`]; hosts rewrite theirs
//! every [`HEARTBEAT_INTERVAL`], so a host that stops (or is killed)
//! disappears within the TTL, and one that leaves deletes its entry.

use crate::error::LatticeError;
use crate::limits::{
    CONNECT_TIMEOUT, HOST_TTL, MAX_HOST_RECORD, MAX_LATTICE_NAME, MAX_RECONNECT_DELAY,
    RECONNECT_STEP, STATE_TIMEOUT,
};
use async_nats::jetstream::kv;
use async_nats::jetstream::stream::StorageType;
use futures_lite::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How to reach a lattice.
#[derive(Debug, Clone, Default)]
pub struct LatticeOptions {
    /// NATS server URL(s), comma-separated.
    pub url: String,
    /// The lattice name (several lattices may share one NATS server).
    pub lattice: String,
    /// A NATS credentials file (JWT and seed), when the server requires one.
    pub credentials: Option<PathBuf>,
    /// A NATS user nkey seed (`SU…`), when the server authenticates users
    /// by nkey.
    pub nkey_seed: Option<String>,
    /// A CA certificate (PEM) to trust for the server's TLS certificate,
    /// besides the system's roots: a server with a private CA.
    pub tls_ca: Option<PathBuf>,
    /// A seed (`SU…`, `SA…` or `SO…`) that signs this client's control
    /// requests, for hosts that accept only signed ones.
    pub control_seed: Option<String>,
}

/// Checks that `name` can be a lattice name: 1–64 of `A–Z a–z 0–9 _ -`.
pub fn check_lattice_name(name: &str) -> Result<(), LatticeError> {
    let bad = |reason: &str| LatticeError::InvalidName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.len() > MAX_LATTICE_NAME {
        return Err(bad(&format!("longer than {MAX_LATTICE_NAME} characters")));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(bad(&format!(
            "{c:?} is not allowed (letters, digits, _ and - are)"
        )));
    }
    Ok(())
}

/// An actor running on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorRecord {
    /// The actor's public key.
    pub key: String,
    /// The name in its claims.
    pub name: String,
    /// The account that issued it.
    #[serde(default)]
    pub account: String,
    /// The capabilities its claims list.
    #[serde(default)]
    pub caps: Vec<String>,
}

/// A binding of an actor to a capability on a host. Its values are not
/// in the lattice state (they may hold credentials), only their names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingRecord {
    /// The actor's key.
    pub actor: String,
    /// The capability id.
    pub capability: String,
    /// The binding name.
    pub binding: String,
    /// The names of its values.
    #[serde(default)]
    pub values: Vec<String>,
}

/// A provider running on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRecord {
    /// The capability id it provides.
    pub capability: String,
    /// Its name.
    pub name: String,
    /// Its public key, when it is a signed (portable) module.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// What the lattice state says of one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    /// The host's server key (`N…`).
    pub id: String,
    /// The lattice it belongs to.
    pub lattice: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The waSCC version it runs.
    pub version: String,
    /// When it started, seconds since the epoch.
    pub started_at: u64,
    /// When it last wrote this record, seconds since the epoch.
    pub heartbeat_at: u64,
    /// The actors it runs.
    pub actors: Vec<ActorRecord>,
    /// The providers it runs.
    pub providers: Vec<ProviderRecord>,
    /// Its bindings.
    #[serde(default)]
    pub bindings: Vec<BindingRecord>,
    /// Its exchange key, signed by it: other hosts derive the MAC keys of
    /// invocations between them and it from this ([`crate::pairing`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<crate::pairing::Exchange>,
}

/// How long to wait before reconnect attempt `attempts` (1, 2, …): at
/// once, then 100 ms more per attempt up to [`MAX_RECONNECT_DELAY`], so a
/// restarted server is found again within a second of coming back.
fn reconnect_delay(attempts: usize) -> Duration {
    (RECONNECT_STEP * attempts.saturating_sub(1).min(u32::MAX as usize) as u32)
        .min(MAX_RECONNECT_DELAY)
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A connection to a lattice: its NATS client and state buckets. Cheap to
/// clone. Every method must run on a tokio runtime.
#[derive(Clone)]
pub struct Lattice {
    name: String,
    client: async_nats::Client,
    hosts: kv::Store,
    hosts_bucket: String,
    blocklist: kv::Store,
    /// Counts the client's connections (1 after the first): a change means
    /// it reconnected, and consumers of the old connection are gone.
    connections: tokio::sync::watch::Receiver<u64>,
    /// Signs control requests sent through this connection.
    control_signer: Option<std::sync::Arc<nkeys::KeyPair>>,
}

impl std::fmt::Debug for Lattice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lattice").field("name", &self.name).finish()
    }
}

pub(crate) async fn timed<T, E: std::fmt::Display>(
    what: impl Fn(String) -> LatticeError,
    fut: impl std::future::Future<Output = Result<T, E>>,
    limit: Duration,
) -> Result<T, LatticeError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(what(e.to_string())),
        Err(_) => Err(what(format!("no answer within {limit:?}"))),
    }
}

/// The options of a connection to the lattice's servers: name, timeout,
/// TLS roots and the user's credentials (an nkey, a credentials file, or a
/// user and password or token from a URL). Errors name the option.
async fn connect_options(
    opts: &LatticeOptions,
    urls: &[async_nats::ServerAddr],
) -> Result<async_nats::ConnectOptions, String> {
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("wascc lattice {}", opts.lattice))
        .connection_timeout(CONNECT_TIMEOUT);
    if let Some(seed) = &opts.nkey_seed {
        nkeys::KeyPair::from_seed(seed.trim())
            .ok()
            .filter(|k| k.public_key().starts_with('U'))
            .ok_or("the NATS nkey is not a user seed (SU…)")?;
        options = options.nkey(seed.trim().to_string());
    }
    if let Some(ca) = &opts.tls_ca {
        // Checked here, as the shards' connections read it, so that a bad
        // file is named before async-nats's "could not load certs".
        crate::tls::read_certificates(ca)?;
        options = options.add_root_certificates(ca.clone());
    }
    if let Some(creds) = &opts.credentials {
        options = options
            .credentials_file(creds)
            .await
            .map_err(|e| format!("credentials file {}: {e}", creds.display()))?;
    }
    // A user and password (or a token: a user without one) in the URL.
    // async-nats (0.51) parses them but does not send them: they are set as
    // options here.
    if opts.credentials.is_none() && opts.nkey_seed.is_none() {
        let userinfo = urls.iter().find(|u| u.has_user_pass());
        if let Some(u) = userinfo.and_then(|u| u.username().map(|n| (n, u.password()))) {
            options = match u {
                (user, Some(pass)) => options.user_and_password(user.into(), pass.into()),
                (token, None) => options.token(token.into()),
            };
        }
    }
    Ok(options)
}

impl Lattice {
    /// Connects to NATS and opens (or creates) the lattice's state buckets.
    pub async fn connect(opts: &LatticeOptions) -> Result<Lattice, LatticeError> {
        check_lattice_name(&opts.lattice)?;
        let connect_err = |reason: String| LatticeError::Connect {
            url: opts.url.clone(),
            reason,
        };
        let control_signer = opts
            .control_seed
            .as_deref()
            .map(|seed| {
                nkeys::KeyPair::from_seed(seed.trim())
                    .ok()
                    .filter(|k| crate::control::is_control_key(&k.public_key()))
                    .map(std::sync::Arc::new)
                    .ok_or_else(|| {
                        connect_err(
                            "the control signing key is not a user, account or operator seed (SU…, SA…, SO…)"
                                .into(),
                        )
                    })
            })
            .transpose()?;
        let urls: Vec<async_nats::ServerAddr> = opts
            .url
            .split(',')
            .map(|u| {
                u.trim()
                    .parse()
                    .map_err(|e| connect_err(format!("{u:?} is not a NATS URL: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let (connected, connections) = tokio::sync::watch::channel(0u64);
        let name = opts.lattice.clone();
        let options = connect_options(opts, &urls)
            .await
            .map_err(connect_err)?
            .retry_on_initial_connect()
            .reconnect_delay_callback(reconnect_delay)
            .event_callback(move |event| {
                match &event {
                    async_nats::Event::Connected => {
                        connected.send_modify(|n| *n += 1);
                        tracing::info!(lattice = %name, "connected to NATS");
                    }
                    async_nats::Event::Disconnected => {
                        tracing::warn!(lattice = %name, "disconnected from NATS; reconnecting")
                    }
                    other => tracing::debug!(lattice = %name, "NATS: {other}"),
                }
                async {}
            });
        let client = options
            .connect(urls.clone())
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        // With retry_on_initial_connect the client returns at once; wait for
        // the connection so that a wrong URL fails here, named. Its retries
        // report only the kind of a failure ("IO error"): one attempt of our
        // own says why (an untrusted certificate, say).
        if let Err(e) = timed(connect_err, client.flush(), CONNECT_TIMEOUT).await {
            let once = connect_options(opts, &urls).await.map_err(connect_err)?;
            return Err(
                match tokio::time::timeout(CONNECT_TIMEOUT, once.connect(urls)).await {
                    Ok(Err(why)) => connect_err(why.to_string()),
                    _ => e,
                },
            );
        }
        let bucket = format!("wascc_v1_{}_hosts", opts.lattice);
        let hosts = open_bucket(
            &client,
            &bucket,
            "waSCC lattice hosts",
            HOST_TTL,
            StorageType::Memory,
        )
        .await?;
        let blocklist = open_bucket(
            &client,
            &blocklist_bucket(&opts.lattice),
            "waSCC lattice block list",
            Duration::ZERO,
            StorageType::File,
        )
        .await?;
        Ok(Lattice {
            name: opts.lattice.clone(),
            client,
            hosts,
            hosts_bucket: bucket,
            blocklist,
            connections,
            control_signer,
        })
    }

    /// The key that signs this connection's control requests, if any.
    pub(crate) fn control_signer(&self) -> Option<&nkeys::KeyPair> {
        self.control_signer.as_deref()
    }

    /// Changes when the client reconnects.
    pub(crate) fn connections(&self) -> tokio::sync::watch::Receiver<u64> {
        self.connections.clone()
    }

    /// The hosts bucket.
    pub(crate) fn hosts_bucket(&self) -> &kv::Store {
        &self.hosts
    }

    /// Follows every change of `bucket`, its current values first, calling
    /// `on_entry` for each (on the current runtime) until the client is
    /// gone. The first watch is made before this returns (an error names
    /// the bucket); a watch lost with its connection is made again at once
    /// after a reconnect (its consumer lived on the old connection, and a
    /// restarted server has none), and again replays the current values:
    /// `on_entry` must be idempotent.
    pub(crate) async fn follow(
        &self,
        bucket: kv::Store,
        what: &'static str,
        mut on_entry: impl FnMut(kv::Entry) + Send + 'static,
    ) -> Result<tokio::task::JoinHandle<()>, LatticeError> {
        let err = |reason| LatticeError::State {
            bucket: format!("{} ({what})", self.name),
            reason,
        };
        let first = timed(err, bucket.watch_with_history(">"), STATE_TIMEOUT).await?;
        let name = self.name.clone();
        let mut connections = self.connections();
        connections.mark_unchanged();
        Ok(tokio::spawn(async move {
            let mut watch = Some(first);
            loop {
                let mut w = match watch.take() {
                    Some(w) => w,
                    None => match bucket.watch_with_history(">").await {
                        Ok(w) => w,
                        Err(e) => {
                            tracing::warn!(lattice = %name, "cannot watch the {what}: {e}");
                            tokio::time::sleep(crate::limits::HEARTBEAT_INTERVAL).await;
                            continue;
                        }
                    },
                };
                loop {
                    let next = tokio::select! {
                        next = w.next() => next,
                        changed = connections.changed() => {
                            if changed.is_err() {
                                return;
                            }
                            None
                        }
                    };
                    let Some(Ok(entry)) = next else { break };
                    on_entry(entry);
                }
                tracing::info!(lattice = %name, "watching the {what} again");
            }
        }))
    }

    /// The block list's bucket.
    pub(crate) fn blocklist(&self) -> &kv::Store {
        &self.blocklist
    }

    pub(crate) fn blocklist_bucket(&self) -> String {
        blocklist_bucket(&self.name)
    }

    /// The lattice's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The NATS client (for the lattice's other services).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// Returns once the server has processed everything this client sent
    /// before (its subscriptions are in place): a request no one answers.
    /// (async-nats's `flush` only writes the buffer; it does not wait for
    /// the server.)
    pub async fn sync(&self) -> Result<(), LatticeError> {
        let mut probe = [0u8; 8];
        let _ = getrandom::fill(&mut probe);
        let subject = format!("_WASCC_SYNC.{}", data_encoding::HEXLOWER.encode(&probe));
        match self.client.request(subject, bytes::Bytes::new()).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => Ok(()),
            Err(e) => Err(LatticeError::Connect {
                url: "the lattice".into(),
                reason: format!("no answer from the server: {e}"),
            }),
        }
    }

    /// Subscribes to `subject`; an error names it.
    pub(crate) async fn subscribe(
        &self,
        subject: &str,
    ) -> Result<async_nats::Subscriber, LatticeError> {
        self.client
            .subscribe(subject.to_string())
            .await
            .map_err(|e| LatticeError::Connect {
                url: "the lattice".into(),
                reason: format!("cannot subscribe to {subject}: {e}"),
            })
    }

    fn state_err(&self) -> impl Fn(String) -> LatticeError + '_ {
        |reason| LatticeError::State {
            bucket: self.hosts_bucket.clone(),
            reason,
        }
    }

    /// Writes (or refreshes) a host's record.
    pub async fn put_host(&self, record: &HostRecord) -> Result<(), LatticeError> {
        let json = serde_json::to_vec(record).map_err(|e| (self.state_err())(e.to_string()))?;
        if json.len() > MAX_HOST_RECORD {
            return Err((self.state_err())(format!(
                "host record of {} bytes exceeds {MAX_HOST_RECORD}",
                json.len()
            )));
        }
        timed(
            self.state_err(),
            self.hosts.put(&record.id, json.into()),
            STATE_TIMEOUT,
        )
        .await
        .map(drop)
    }

    /// Makes the state buckets again if they are gone: the hosts bucket
    /// lives in the NATS server's memory, so a restarted server has lost
    /// it (the block list is on its disk). Called when a write fails.
    pub async fn restore_state(&self) -> Result<(), LatticeError> {
        open_bucket(
            &self.client,
            &self.hosts_bucket,
            "waSCC lattice hosts",
            HOST_TTL,
            StorageType::Memory,
        )
        .await?;
        open_bucket(
            &self.client,
            &blocklist_bucket(&self.name),
            "waSCC lattice block list",
            Duration::ZERO,
            StorageType::File,
        )
        .await
        .map(drop)
    }

    /// Removes a host's record (the host is leaving).
    pub async fn remove_host(&self, id: &str) -> Result<(), LatticeError> {
        timed(self.state_err(), self.hosts.purge(id), STATE_TIMEOUT).await
    }

    /// Every host in the lattice state, ordered by id. A record that
    /// cannot be read is skipped with a warning naming it.
    pub async fn hosts(&self) -> Result<Vec<HostRecord>, LatticeError> {
        let err = self.state_err();
        let list = async {
            let mut keys = self.hosts.keys().await.map_err(|e| e.to_string())?;
            let mut ids = Vec::new();
            while let Some(k) = keys.next().await {
                ids.push(k.map_err(|e| e.to_string())?);
            }
            let mut out = Vec::new();
            for id in ids {
                let Some(bytes) = self.hosts.get(&id).await.map_err(|e| e.to_string())? else {
                    continue;
                };
                match serde_json::from_slice::<HostRecord>(&bytes) {
                    Ok(r) => out.push(r),
                    Err(e) => tracing::warn!(host = %id, "unreadable host record: {e}"),
                }
            }
            out.sort_by(|a, b| a.id.cmp(&b.id));
            Ok::<_, String>(out)
        };
        timed(err, list, STATE_TIMEOUT).await
    }
}

fn blocklist_bucket(lattice: &str) -> String {
    format!("wascc_v1_{lattice}_blocklist")
}

/// Opens key-value bucket `bucket`, creating it if needed with one value
/// per key, values older than `max_age` dropped (zero: kept).
async fn open_bucket(
    client: &async_nats::Client,
    bucket: &str,
    description: &str,
    max_age: Duration,
    storage: StorageType,
) -> Result<kv::Store, LatticeError> {
    let js = async_nats::jetstream::new(client.clone());
    let err = |reason: String| LatticeError::State {
        bucket: bucket.to_string(),
        reason,
    };
    if let Ok(store) = js.get_key_value(bucket).await {
        return Ok(store);
    }
    // The stream a key-value bucket is, made here rather than with
    // `create_key_value`: async-nats 0.51 first reads the account info in a
    // shape NATS 2.9 (Debian's package) does not send, and fails.
    use async_nats::jetstream::stream;
    let created = js
        .create_stream(stream::Config {
            name: format!("KV_{bucket}"),
            description: Some(description.to_string()),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age,
            storage,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            num_replicas: 1,
            ..Default::default()
        })
        .await;
    // Made, or made meanwhile by another host: open it.
    js.get_key_value(bucket)
        .await
        .map_err(|open| match created {
            Err(e) => err(format!("cannot create it (is JetStream enabled?): {e}")),
            Ok(_) => err(format!("cannot open it: {open}")),
        })
}
