//! The built-in `wascc:http_server` as a provider: binding an actor (values
//! `PORT`, optional `ADDR`, default `0.0.0.0`) opens a listener on every
//! shard, unbinding closes it, at build or while the host serves. The
//! provider writes the table of listeners; each shard opens and closes its
//! own listeners to match (`SO_REUSEPORT`: one accept queue per shard),
//! looking at the table every [`SHUTDOWN_POLL`]; a bind returns once every
//! serving shard listens.

use crate::http::{self, Target};
use crate::limits::{HTTP_BIND_WAIT, PORT_RELEASE_WAIT, SHUTDOWN_POLL};
use arc_swap::ArcSwap;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wascc_contracts::{
    BindingRef, CapabilityProvider, ProviderError, ProviderFuture, ProviderReply, expect_values,
};
use wascc_scheduler::ShardId;

/// An HTTP listener bound to an actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpBinding {
    /// The actor's key.
    pub actor: String,
    /// The binding name.
    pub binding: String,
    /// Where it listens (the port concrete, also when 0 was asked).
    pub addr: SocketAddr,
}

/// The host's HTTP listeners.
#[derive(Default)]
pub(crate) struct HttpListeners {
    /// By address.
    table: ArcSwap<BTreeMap<SocketAddr, HttpBinding>>,
    version: AtomicU64,
    /// Per serving shard, the version it listens as (empty until the host
    /// serves).
    applied: ArcSwap<Vec<AtomicU64>>,
    write: Mutex<()>,
}

impl HttpListeners {
    /// The host serves on `shards` shards from now on.
    pub(crate) fn serve(&self, shards: usize) {
        self.applied
            .store(Arc::new((0..shards).map(|_| AtomicU64::new(0)).collect()));
    }

    /// The listeners, in order of address.
    pub(crate) fn bindings(&self) -> Vec<HttpBinding> {
        self.table.load().values().cloned().collect()
    }

    fn update(&self, f: impl FnOnce(&mut BTreeMap<SocketAddr, HttpBinding>)) -> u64 {
        let mut next = BTreeMap::clone(&self.table.load());
        f(&mut next);
        self.table.store(Arc::new(next));
        self.version.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Whether every serving shard listens as of `version`.
    fn applied(&self, version: u64) -> bool {
        self.applied
            .load()
            .iter()
            .all(|v| v.load(Ordering::Acquire) >= version)
    }
}

/// Checks that `addr` is free (no process, ours or another, listens there:
/// shards bind with `SO_REUSEPORT`, which would share a port silently) and
/// turns port 0 into a concrete free port every shard can bind.
pub(crate) fn claim_port(addr: SocketAddr) -> Result<SocketAddr, String> {
    let started = Instant::now();
    let probe = loop {
        match std::net::TcpListener::bind(addr) {
            Ok(p) => break p,
            // A host that just exited may still hold its port for a moment:
            // the kernel closes sockets with io_uring operations pending
            // after the process is gone.
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && started.elapsed() < PORT_RELEASE_WAIT =>
            {
                std::thread::sleep(SHUTDOWN_POLL);
            }
            Err(e) => return Err(format!("cannot listen on {addr}: {e}")),
        }
    };
    probe
        .local_addr()
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

/// The address a binding's values name.
fn address(values: &HashMap<String, String>) -> Result<SocketAddr, String> {
    let port = values
        .get("PORT")
        .ok_or_else(|| "value PORT is required".to_string())?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("PORT {port:?} is not a port number"))?;
    let ip = values.get("ADDR").map(String::as_str).unwrap_or("0.0.0.0");
    format!("{ip}:{port}")
        .parse()
        .or_else(|_| format!("[{ip}]:{port}").parse())
        .map_err(|_| format!("ADDR {ip:?} is not an IP address"))
}

/// The `wascc:http_server` provider.
pub(crate) struct HttpServer {
    listeners: Arc<HttpListeners>,
    services: tokio::runtime::Handle,
}

impl HttpServer {
    pub(crate) fn new(listeners: Arc<HttpListeners>, services: tokio::runtime::Handle) -> Self {
        HttpServer {
            listeners,
            services,
        }
    }

    fn bind(
        &self,
        actor: &str,
        binding: &str,
        values: &HashMap<String, String>,
    ) -> Result<u64, String> {
        expect_values(
            wascc_contracts::http::CAPABILITY_ID,
            values,
            &["PORT", "ADDR"],
        )
        .map_err(|e| e.0)?;
        let wanted = address(values)?;
        let l = &self.listeners;
        let _w = l.write.lock().unwrap_or_else(|p| p.into_inner());
        let table = l.table.load();
        let previous = table
            .values()
            .find(|b| b.actor == actor && b.binding == binding)
            .cloned();
        if let Some(other) = table.get(&wanted) {
            if other.actor != actor || other.binding != binding {
                return Err(format!(
                    "{wanted} is already bound to actor {}",
                    other.actor
                ));
            }
            // The same binding again, same place: nothing to do.
            return Ok(l.version.load(Ordering::Acquire));
        }
        let addr = claim_port(wanted)?;
        Ok(l.update(|t| {
            if let Some(p) = &previous {
                t.remove(&p.addr);
            }
            t.insert(
                addr,
                HttpBinding {
                    actor: actor.to_string(),
                    binding: binding.to_string(),
                    addr,
                },
            );
        }))
    }
}

impl CapabilityProvider for HttpServer {
    fn capability_id(&self) -> &str {
        wascc_contracts::http::CAPABILITY_ID
    }

    fn name(&self) -> &str {
        "built-in HTTP server"
    }

    fn bind_actor(
        &self,
        binding: BindingRef<'_>,
        values: &HashMap<String, String>,
    ) -> ProviderFuture<()> {
        let version = self.bind(binding.actor, binding.binding, values);
        let listeners = self.listeners.clone();
        let services = self.services.clone();
        Box::pin(async move {
            let version = version.map_err(ProviderError)?;
            // Serving: return when every shard listens (bounded).
            let started = Instant::now();
            while !listeners.applied(version) && started.elapsed() < HTTP_BIND_WAIT {
                let _ = services
                    .spawn(async { tokio::time::sleep(SHUTDOWN_POLL / 4).await })
                    .await;
            }
            Ok(())
        })
    }

    fn remove_actor(&self, binding: BindingRef<'_>) {
        let l = &self.listeners;
        let _w = l.write.lock().unwrap_or_else(|p| p.into_inner());
        l.update(|t| {
            t.retain(|_, b| !(b.actor == binding.actor && b.binding == binding.binding));
        });
    }

    fn handle_call(
        &self,
        _binding: BindingRef<'_>,
        operation: &str,
        _payload: &[u8],
    ) -> ProviderReply {
        ProviderReply::Ready(Err(ProviderError(format!(
            "{} delivers requests to actors; it has no operation {operation:?} for them to call",
            wascc_contracts::http::CAPABILITY_ID
        ))))
    }

    fn shutdown(&self) {
        let l = &self.listeners;
        let _w = l.write.lock().unwrap_or_else(|p| p.into_inner());
        l.update(BTreeMap::clear);
    }
}

/// A listener open on a shard: what it serves and its stop flag.
type OpenListener = (HttpBinding, Rc<Cell<bool>>);

/// The listeners one shard has open.
#[derive(Default)]
pub(crate) struct ShardListeners {
    open: RefCell<HashMap<SocketAddr, OpenListener>>,
    seen: Cell<u64>,
}

impl ShardListeners {
    /// Opens and closes this shard's listeners to match the table (all
    /// closed when `stopping`). A listener that cannot be opened is logged
    /// and tried again at the next look.
    pub(crate) fn reconcile(&self, all: &HttpListeners, shard: ShardId, stopping: bool) {
        let version = all.version.load(Ordering::Acquire);
        if version == self.seen.get() && !stopping {
            return;
        }
        let table = all.table.load();
        let mut open = self.open.borrow_mut();
        open.retain(|addr, (b, stop)| {
            let keep = !stopping && table.get(addr) == Some(b);
            if !keep {
                stop.set(true);
            }
            keep
        });
        let mut complete = true;
        if !stopping {
            for (addr, b) in table.iter() {
                if open.contains_key(addr) {
                    continue;
                }
                let listener = match wascc_scheduler::net::Listener::bind(*addr) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(actor = %b.actor, %addr, "cannot listen: {e}");
                        complete = false;
                        continue;
                    }
                };
                if shard.index() == 0 {
                    tracing::info!(actor = %b.actor, %addr, "http server listening");
                }
                let stop = Rc::new(Cell::new(false));
                wascc_scheduler::spawn_local(http::accept_loop(
                    listener,
                    Rc::new(Target {
                        key: b.actor.clone(),
                    }),
                    stop.clone(),
                ));
                open.insert(*addr, (b.clone(), stop));
            }
        }
        if complete {
            self.seen.set(version);
            if let Some(v) = all.applied.load().get(shard.index()) {
                v.store(version, Ordering::Release);
            }
        }
    }
}
