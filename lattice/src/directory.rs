//! A host's live view of the lattice state: which hosts serve which
//! subjects, and the MAC keys this host shares with each of them. Kept by
//! watching the hosts bucket (a change reaches every host in about a
//! millisecond), so sending an invocation reads memory, never the store.
//!
//! The sender of an invocation picks one of the hosts the view lists as
//! serving the subject ([`Directory::recipients`]), sends it on that host's
//! own subject and tags it with the keys it shares with that host; when it
//! has no such keys (a host whose exchange key is not valid), the
//! invocation is signed instead.

use crate::limits::HOST_TTL;
use crate::pairing::{Exchange, ExchangeKey, PeerKey};
use crate::rpc::{BindingKey, binding_subject};
use crate::state::{HostRecord, Lattice};
use async_nats::jetstream::kv;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// The hosts serving one subject, as the view knows them (by host key).
#[derive(Debug, Default)]
pub struct Route {
    targets: Vec<Target>,
}

/// One host serving a subject.
#[derive(Debug)]
pub struct Target {
    /// The host's key.
    pub host: String,
    /// The keys this host shares with it; `None` when its exchange key is
    /// missing or not valid (invocations to it are signed).
    pub peer: Option<Arc<PeerKey>>,
}

impl Route {
    /// The hosts listed as serving the subject, sorted by key.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }
}

struct Known {
    seen: Instant,
    subjects: Vec<String>,
    exchange: Option<Exchange>,
    peer: Option<Arc<PeerKey>>,
}

#[derive(Default)]
struct View {
    hosts: HashMap<String, Known>,
    routes: HashMap<String, Arc<Route>>,
    swept: Option<Instant>,
}

/// The view, shared by the host's sending and receiving sides.
pub struct Directory {
    lattice: String,
    me: String,
    exchange: ExchangeKey,
    view: RwLock<View>,
}

impl Directory {
    /// An empty view for host `me` (whose exchange key is `exchange`) of
    /// `lattice`; [`follow`](Self::follow) fills it.
    pub fn new(lattice: &str, me: &str, exchange: ExchangeKey) -> Arc<Directory> {
        Arc::new(Directory {
            lattice: lattice.to_string(),
            me: me.to_string(),
            exchange,
            view: RwLock::default(),
        })
    }

    /// What this host publishes of its exchange key (for its record).
    pub fn exchange(&self) -> &Exchange {
        self.exchange.published()
    }

    /// The hosts other than this one serving `subject`.
    pub fn recipients(&self, subject: &str) -> Option<Arc<Route>> {
        self.read().routes.get(subject).cloned()
    }

    /// The keys shared with host `host`, if known.
    pub fn peer(&self, host: &str) -> Option<Arc<PeerKey>> {
        self.read().hosts.get(host).and_then(|k| k.peer.clone())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, View> {
        self.view.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, View> {
        self.view.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies one entry of the hosts bucket.
    fn apply(&self, entry: &kv::Entry) {
        let now = Instant::now();
        match entry.operation {
            kv::Operation::Put => match serde_json::from_slice::<HostRecord>(&entry.value) {
                Ok(r) if r.id == entry.key && r.lattice == self.lattice => self.update(r, now),
                Ok(r) => {
                    tracing::warn!(key = %entry.key, id = %r.id, "host record of another host or lattice ignored")
                }
                Err(e) => tracing::warn!(key = %entry.key, "unreadable host record: {e}"),
            },
            _ => self.remove(&entry.key),
        }
        self.sweep(now);
    }

    fn update(&self, record: HostRecord, now: Instant) {
        if record.id == self.me {
            return;
        }
        let mut subjects: Vec<String> = record
            .actors
            .iter()
            .map(|a| crate::actor_subject(&self.lattice, &a.key))
            .chain(record.bindings.iter().map(|b| {
                binding_subject(
                    &self.lattice,
                    &BindingKey {
                        actor: b.actor.clone(),
                        capability: b.capability.clone(),
                        binding: b.binding.clone(),
                    },
                )
            }))
            .collect();
        subjects.sort();
        subjects.dedup();
        let mut view = self.write();
        let unchanged = view.hosts.get_mut(&record.id).is_some_and(|k| {
            k.seen = now;
            k.subjects == subjects && k.exchange == record.exchange
        });
        if unchanged {
            return;
        }
        // Pairing is a signature check and a Diffie-Hellman (~150 µs):
        // only when the host's exchange key is new.
        let old = view.hosts.get(&record.id);
        let peer = match (&record.exchange, old) {
            (Some(x), Some(k)) if k.peer.as_ref().is_some_and(|p| p.made_with(&x.key)) => {
                k.peer.clone()
            }
            (Some(x), _) => match self.exchange.pair(&self.lattice, &self.me, &record.id, x) {
                Ok(p) => Some(Arc::new(p)),
                Err(e) => {
                    tracing::warn!(host = %record.id, "no MAC keys with this host (its invocations must be signed): {e}");
                    None
                }
            },
            (None, _) => None,
        };
        let mut affected = old.map(|k| k.subjects.clone()).unwrap_or_default();
        affected.extend(subjects.iter().cloned());
        view.hosts.insert(
            record.id,
            Known {
                seen: now,
                subjects,
                exchange: record.exchange,
                peer,
            },
        );
        rebuild(&mut view, affected);
    }

    fn remove(&self, host: &str) {
        let mut view = self.write();
        if let Some(k) = view.hosts.remove(host) {
            rebuild(&mut view, k.subjects);
        }
    }

    /// Forgets hosts not heard from within the TTL: the bucket drops their
    /// records without telling watchers.
    fn sweep(&self, now: Instant) {
        let due = self
            .read()
            .swept
            .is_none_or(|t| now.duration_since(t) >= HOST_TTL / 2);
        if !due {
            return;
        }
        let mut view = self.write();
        view.swept = Some(now);
        let gone: Vec<String> = view
            .hosts
            .iter()
            .filter(|(_, k)| now.duration_since(k.seen) > HOST_TTL)
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            if let Some(k) = view.hosts.remove(&id) {
                tracing::debug!(host = %id, "host gone from the lattice view");
                rebuild(&mut view, k.subjects);
            }
        }
    }

    /// Fills the view from the hosts bucket and keeps it current (until
    /// the client is gone; re-watched after a reconnect).
    pub async fn follow(
        self: &Arc<Self>,
        lattice: &Lattice,
    ) -> Result<tokio::task::JoinHandle<()>, crate::LatticeError> {
        let this = self.clone();
        lattice
            .follow(lattice.hosts_bucket().clone(), "hosts", move |entry| {
                this.apply(&entry)
            })
            .await
    }
}

/// Recomputes the routes of `subjects` from the hosts.
fn rebuild(view: &mut View, mut subjects: Vec<String>) {
    subjects.sort();
    subjects.dedup();
    for s in subjects {
        let mut hosts: Vec<&String> = view
            .hosts
            .iter()
            .filter(|(_, k)| k.subjects.binary_search(&s).is_ok())
            .map(|(id, _)| id)
            .collect();
        if hosts.is_empty() {
            view.routes.remove(&s);
            continue;
        }
        hosts.sort();
        let targets = hosts
            .into_iter()
            .map(|id| Target {
                host: id.clone(),
                peer: view.hosts.get(id).and_then(|k| k.peer.clone()),
            })
            .collect();
        view.routes.insert(s, Arc::new(Route { targets }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ActorRecord;
    use nkeys::KeyPair;
    use std::time::Duration;

    fn record(id: &str, actors: &[&str], exchange: Option<Exchange>) -> HostRecord {
        HostRecord {
            id: id.to_string(),
            lattice: "l".into(),
            labels: Default::default(),
            version: "1".into(),
            started_at: 0,
            heartbeat_at: 0,
            actors: actors
                .iter()
                .map(|k| ActorRecord {
                    key: k.to_string(),
                    name: "a".into(),
                    account: String::new(),
                    caps: Vec::new(),
                })
                .collect(),
            providers: Vec::new(),
            bindings: Vec::new(),
            exchange,
        }
    }

    #[test]
    fn routes_follow_records_with_the_keys_of_each_host() {
        let me = KeyPair::new_server();
        let dir = Directory::new("l", &me.public_key(), ExchangeKey::generate(&me, "l"));
        let (b, c) = (KeyPair::new_server(), KeyPair::new_server());
        let (bid, cid) = (b.public_key(), c.public_key());
        let xb = ExchangeKey::generate(&b, "l").published().clone();
        let subject = crate::actor_subject("l", "MX");
        let now = Instant::now();
        let hosts = |subject: &str| -> Vec<(String, bool)> {
            dir.recipients(subject)
                .map(|r| {
                    r.targets()
                        .iter()
                        .map(|t| (t.host.clone(), t.peer.is_some()))
                        .collect()
                })
                .unwrap_or_default()
        };
        dir.update(record(&bid, &["MX"], Some(xb.clone())), now);
        assert_eq!(hosts(&subject), [(bid.clone(), true)]);
        assert!(dir.peer(&bid).is_some());
        // A host without an exchange key serving it too: listed, without
        // keys (invocations to it are signed), until it is gone.
        dir.update(record(&cid, &["MX"], None), now);
        let mut want = vec![(bid.clone(), true), (cid.clone(), false)];
        want.sort();
        assert_eq!(hosts(&subject), want);
        dir.remove(&cid);
        assert_eq!(hosts(&subject), [(bid.clone(), true)]);
        // Our own record routes nothing; a heartbeat keeps the same keys.
        dir.update(record(&me.public_key(), &["MY"], None), now);
        assert!(dir.recipients(&crate::actor_subject("l", "MY")).is_none());
        let peer = dir.peer(&bid).unwrap();
        dir.update(record(&bid, &["MX"], Some(xb.clone())), now);
        assert!(Arc::ptr_eq(&peer, &dir.peer(&bid).unwrap()));
        // The actor stops there: no route.
        dir.update(record(&bid, &[], Some(xb.clone())), now);
        assert!(dir.recipients(&subject).is_none());
        // A forged exchange key (B's record with C's key) gives no keys.
        let xc = ExchangeKey::generate(&c, "l").published().clone();
        dir.update(record(&bid, &["MX"], Some(xc)), now);
        assert!(dir.peer(&bid).is_none());
        assert_eq!(hosts(&subject), [(bid.clone(), false)]);
        // Not heard from within the TTL: forgotten.
        dir.sweep(now + HOST_TTL + Duration::from_secs(1));
        assert!(dir.recipients(&subject).is_none());
        assert!(dir.peer(&bid).is_none());
    }
}
