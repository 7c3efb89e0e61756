//! Engines, the compiled-module cache and the precompiled-module cache.

use crate::error::EngineError;
use crate::limits::*;
use crate::meter::Metered;
use crate::wapc::{HostHandler, WapcInstance, WapcState, add_to_linker};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::{
    Config, InstanceAllocationStrategy, InstancePre, Linker, Module, PoolingAllocationConfig,
    Store, StoreLimitsBuilder, UpdateDeadline,
};

/// How an engine executes wasm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// Cranelift JIT compilation.
    Jit,
    /// wasmtime's Pulley interpreter.
    Interp,
    /// JIT with precompiled `.cwasm` files cached on disk across restarts.
    Aot,
    /// JIT with fuel metering and tight memory and table limits.
    Constrained,
}

impl EngineKind {
    /// The name used on the command line and in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Jit => "jit",
            EngineKind::Interp => "interp",
            EngineKind::Aot => "aot",
            EngineKind::Constrained => "constrained",
        }
    }

    /// Every kind, for tests and help texts.
    pub const ALL: [EngineKind; 4] = [
        EngineKind::Jit,
        EngineKind::Interp,
        EngineKind::Aot,
        EngineKind::Constrained,
    ];
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EngineKind {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jit" => Ok(EngineKind::Jit),
            "interp" => Ok(EngineKind::Interp),
            "aot" => Ok(EngineKind::Aot),
            "constrained" => Ok(EngineKind::Constrained),
            other => Err(EngineError::UnknownKind(other.to_string())),
        }
    }
}

/// Configuration of one engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How wasm runs.
    pub kind: EngineKind,
    /// Instances the pool holds (live actors' instances on this engine).
    pub max_instances: u32,
    /// Largest linear memory of one instance.
    pub max_memory_bytes: usize,
    /// Largest table of one instance.
    pub max_table_elements: usize,
    /// Time one invocation may run.
    pub call_deadline: Duration,
    /// Fuel per invocation (`constrained` only).
    pub fuel_per_call: Option<u64>,
    /// Directory of precompiled modules (`aot` only).
    pub aot_dir: Option<PathBuf>,
    /// Invocations (and instantiations) that may run at once: each holds a
    /// fiber stack while it runs, idle instances hold none.
    pub max_concurrent_calls: u32,
    /// Map module data copy-on-write into each instance's memory (fast
    /// instantiation of large modules, but one or more kernel mappings per
    /// live instance). Off, data is copied in and every slot stays part of
    /// one mapping: what dense hosts want.
    pub copy_on_write: bool,
    /// Unmapped bytes after each linear memory.
    pub memory_guard_bytes: u64,
    /// Native stack wasm frames may use in one call.
    pub max_wasm_stack: usize,
    /// Native stack of one running call: wasm frames plus the host's frames
    /// (host calls, providers) run on it. Must exceed `max_wasm_stack`.
    pub async_stack: usize,
}

impl EngineConfig {
    /// The defaults of a kind.
    pub fn new(kind: EngineKind) -> Self {
        let constrained = kind == EngineKind::Constrained;
        EngineConfig {
            kind,
            max_instances: DEFAULT_MAX_INSTANCES,
            max_memory_bytes: if constrained {
                CONSTRAINED_MAX_MEMORY_BYTES
            } else {
                DEFAULT_MAX_MEMORY_BYTES
            },
            max_table_elements: if constrained {
                CONSTRAINED_MAX_TABLE_ELEMENTS
            } else {
                DEFAULT_MAX_TABLE_ELEMENTS
            },
            call_deadline: DEFAULT_CALL_DEADLINE,
            fuel_per_call: constrained.then_some(CONSTRAINED_FUEL_PER_CALL),
            aot_dir: None,
            max_concurrent_calls: DEFAULT_MAX_CONCURRENT_CALLS,
            copy_on_write: true,
            memory_guard_bytes: MEMORY_GUARD_BYTES,
            max_wasm_stack: MAX_WASM_STACK,
            async_stack: ASYNC_STACK,
        }
    }

    /// A configuration for packing many small actors: `instances` slots of
    /// exactly `memory_bytes` (the modules' own need) with `table_elements`
    /// table entries, no copy-on-write and no guard region, so that every
    /// slot lives in one mapping and costs only the pages it touches.
    pub fn dense(
        kind: EngineKind,
        instances: u32,
        memory_bytes: usize,
        table_elements: usize,
    ) -> Self {
        let mut c = EngineConfig::new(kind);
        c.max_instances = instances;
        c.max_memory_bytes = memory_bytes;
        c.max_table_elements = table_elements;
        c.copy_on_write = false;
        c.memory_guard_bytes = 0;
        // wasmtime keeps the last fiber stack in each store for its next
        // call, so every instance that has run holds one.
        c.max_concurrent_calls = instances;
        c.max_wasm_stack = DENSE_MAX_WASM_STACK;
        c.async_stack = DENSE_ASYNC_STACK;
        c
    }
}

struct Inner {
    engine: wasmtime::Engine,
    linker: Linker<WapcState>,
    /// `linker` plus WASI preview 1, for portable providers.
    wasi_linker: Linker<WapcState>,
    config: EngineConfig,
    modules: Mutex<HashMap<[u8; 32], ActorModule>>,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// A wasm engine: one wasmtime engine with its instance pool, the waPC
/// linker and the cache of compiled modules. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Engine {
    /// Builds an engine and starts its epoch ticker.
    pub fn new(config: EngineConfig) -> Result<Engine, EngineError> {
        let kind = config.kind.as_str();
        let cfg_err = |e: wasmtime::Error| EngineError::Config {
            kind,
            reason: format!("{e:#}"),
        };
        let mut wt = Config::new();
        wt.epoch_interruption(true)
            .max_wasm_stack(config.max_wasm_stack)
            .async_stack_size(config.async_stack)
            .memory_init_cow(config.copy_on_write)
            .memory_reservation(config.max_memory_bytes as u64)
            .memory_guard_size(config.memory_guard_bytes)
            .guard_before_linear_memory(config.memory_guard_bytes > 0)
            .memory_reservation_for_growth(0);
        if config.kind == EngineKind::Interp {
            wt.target("pulley64").map_err(cfg_err)?;
        }
        if config.fuel_per_call.is_some() {
            wt.consume_fuel(true);
        }
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(config.max_instances)
            .total_memories(config.max_instances)
            .total_tables(config.max_instances)
            .total_stacks(config.max_instances.min(config.max_concurrent_calls.max(1)))
            .max_memory_size(config.max_memory_bytes)
            .table_elements(config.max_table_elements);
        wt.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = wasmtime::Engine::new(&wt).map_err(cfg_err)?;
        let mut linker = Linker::new(&engine);
        add_to_linker(&mut linker).map_err(cfg_err)?;
        let mut wasi_linker = linker.clone();
        crate::wasi::add_to_linker(&mut wasi_linker).map_err(cfg_err)?;
        if let Some(dir) = &config.aot_dir {
            std::fs::create_dir_all(dir).map_err(|e| EngineError::AotCache {
                path: dir.display().to_string(),
                reason: e.to_string(),
            })?;
        }
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_ticker(engine.clone(), ticker_stop.clone());
        Ok(Engine {
            inner: Arc::new(Inner {
                engine,
                linker,
                wasi_linker,
                config,
                modules: Mutex::new(HashMap::new()),
                ticker_stop,
            }),
        })
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Compiles (or finds in the cache) a module and checks that it is a waPC
    /// actor. The cache is keyed by the SHA-256 of the bytes.
    pub fn load(&self, wasm: &[u8]) -> Result<ActorModule, EngineError> {
        let key: [u8; 32] = Sha256::digest(wasm).into();
        if let Some(m) = self.lock_modules().get(&key) {
            return Ok(m.clone());
        }
        let module = self.compile(&key, wasm)?;
        let actor = self.prepare(module, &self.inner.linker, false)?;
        self.lock_modules().insert(key, actor.clone());
        Ok(actor)
    }

    /// Compiles a portable capability provider: a waPC module built for
    /// WASI preview 1, linked with a WASI that maps nothing of the machine
    /// (see [`WasiConfig`](crate::WasiConfig)). Not cached: a host runs few
    /// providers, each once.
    pub fn load_wasi(&self, wasm: &[u8]) -> Result<ActorModule, EngineError> {
        let key: [u8; 32] = Sha256::digest(wasm).into();
        let module = self.compile(&key, wasm)?;
        let mut linker = self.inner.wasi_linker.clone();
        crate::wasi::define_missing(&mut linker, &module)
            .map_err(|e| EngineError::NotWapc(format!("{e:#}")))?;
        self.prepare(module, &linker, true)
    }

    fn compile(&self, key: &[u8; 32], wasm: &[u8]) -> Result<Module, EngineError> {
        match &self.inner.config.aot_dir {
            Some(dir) => self.load_precompiled(dir, key, wasm),
            None => Module::new(&self.inner.engine, wasm)
                .map_err(|e| EngineError::InvalidModule(format!("{e:#}"))),
        }
    }

    fn lock_modules(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], ActorModule>> {
        self.inner.modules.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn prepare(
        &self,
        module: Module,
        linker: &Linker<WapcState>,
        wasi: bool,
    ) -> Result<ActorModule, EngineError> {
        let exports: Vec<String> = module.exports().map(|e| e.name().to_string()).collect();
        for required in ["__guest_call", "memory"] {
            if !exports.iter().any(|e| e == required) {
                return Err(EngineError::NotWapc(format!(
                    "it does not export `{required}`"
                )));
            }
        }
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| EngineError::NotWapc(format!("{e:#}")))?;
        Ok(ActorModule {
            pre,
            engine: self.clone(),
            wasi,
        })
    }

    fn load_precompiled(
        &self,
        dir: &Path,
        key: &[u8; 32],
        wasm: &[u8],
    ) -> Result<Module, EngineError> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.inner
            .engine
            .precompile_compatibility_hash()
            .hash(&mut h);
        let name = format!(
            "{}-{:016x}",
            data_encoding::HEXLOWER.encode(key),
            h.finish()
        );
        let path = dir.join(format!("{name}.cwasm"));
        let sum_path = dir.join(format!("{name}.sha256"));
        let aot_err = |p: &Path, reason: String| EngineError::AotCache {
            path: p.display().to_string(),
            reason,
        };
        if let (Ok(bytes), Ok(sum)) = (std::fs::read(&path), std::fs::read_to_string(&sum_path)) {
            if data_encoding::HEXLOWER.encode(&Sha256::digest(&bytes)) == sum.trim() {
                // SAFETY: the file was written by `precompile_module` of an
                // engine with the same compatibility hash (it is in the file
                // name), and its SHA-256 matches the sum written after it, so
                // it is our own complete output, not a torn or foreign file.
                // wasmtime checks the header and engine settings again.
                match unsafe { Module::deserialize(&self.inner.engine, &bytes) } {
                    Ok(m) => return Ok(m),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), "discarding precompiled module: {e:#}")
                    }
                }
            } else {
                tracing::warn!(path = %path.display(), "discarding precompiled module: checksum mismatch");
            }
        }
        let bytes = self
            .inner
            .engine
            .precompile_module(wasm)
            .map_err(|e| EngineError::InvalidModule(format!("{e:#}")))?;
        let tmp = dir.join(format!("{name}.cwasm.tmp{}", std::process::id()));
        std::fs::write(&tmp, &bytes).map_err(|e| aot_err(&tmp, e.to_string()))?;
        std::fs::rename(&tmp, &path).map_err(|e| aot_err(&path, e.to_string()))?;
        std::fs::write(
            &sum_path,
            data_encoding::HEXLOWER.encode(&Sha256::digest(&bytes)),
        )
        .map_err(|e| aot_err(&sum_path, e.to_string()))?;
        // SAFETY: `bytes` was produced by `precompile_module` of this very
        // engine a moment ago.
        unsafe { Module::deserialize(&self.inner.engine, &bytes) }
            .map_err(|e| aot_err(&path, format!("{e:#}")))
    }
}

fn spawn_ticker(engine: wasmtime::Engine, stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("wascc-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        });
    if let Err(e) = spawned {
        // Without a ticker no deadline fires; say so loudly but keep serving.
        tracing::error!("cannot start the epoch ticker, deadlines are off: {e}");
    }
}

/// A compiled, linked actor module, ready to instantiate. Cheap to clone.
#[derive(Clone)]
pub struct ActorModule {
    pre: InstancePre<WapcState>,
    engine: Engine,
    /// Linked with WASI ([`Engine::load_wasi`]).
    wasi: bool,
}

impl std::fmt::Debug for ActorModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorModule")
            .field("engine", &self.engine.inner.config.kind)
            .finish()
    }
}

impl ActorModule {
    /// The kind of engine the module was compiled for.
    pub fn kind(&self) -> EngineKind {
        self.engine.inner.config.kind
    }

    /// Instantiates the module from the pool and runs its initializers
    /// (`_initialize`, `_start`, then `wapc_init`, where exported). A
    /// module from [`Engine::load_wasi`] sees an empty WASI configuration.
    pub async fn instantiate(
        &self,
        actor: &str,
        handler: Arc<dyn HostHandler>,
    ) -> Result<WapcInstance, EngineError> {
        self.instantiate_with(actor, handler, None).await
    }

    /// Like [`instantiate`](Self::instantiate), showing a module from
    /// [`Engine::load_wasi`] the arguments and environment of `wasi`.
    pub async fn instantiate_with(
        &self,
        actor: &str,
        handler: Arc<dyn HostHandler>,
        wasi: Option<&crate::WasiConfig>,
    ) -> Result<WapcInstance, EngineError> {
        let cfg = &self.engine.inner.config;
        let fail = |reason: String| EngineError::Instantiate {
            actor: actor.to_string(),
            reason,
        };
        let limits = StoreLimitsBuilder::new()
            .memory_size(cfg.max_memory_bytes)
            .table_elements(cfg.max_table_elements)
            .instances(1)
            .build();
        let mut store = Store::new(
            &self.engine.inner.engine,
            WapcState::new(Arc::from(actor), handler, cfg.call_deadline, limits),
        );
        store.limiter(|st| &mut st.limits);
        if self.wasi {
            store.data_mut().wasi = Some(Box::new(crate::wasi::WasiCtx::new(
                wasi.unwrap_or(&crate::WasiConfig::default()),
            )));
        }
        if let Some(fuel) = cfg.fuel_per_call {
            store.set_fuel(fuel).map_err(|e| fail(format!("{e:#}")))?;
            store
                .fuel_async_yield_interval(Some(CONSTRAINED_FUEL_YIELD_INTERVAL))
                .map_err(|e| fail(format!("{e:#}")))?;
        }
        store.epoch_deadline_callback(|mut ctx| {
            let st = ctx.data_mut();
            if st.call_started.elapsed() >= st.deadline {
                st.deadline_hit = true;
                return Ok(UpdateDeadline::Interrupt);
            }
            // Let the shard's other tasks run, then check again next tick.
            Ok(UpdateDeadline::Yield(1))
        });
        store.set_epoch_deadline(1);
        let guest_call = {
            let init = async {
                let instance = self
                    .pre
                    .instantiate_async(&mut store)
                    .await
                    .map_err(|e| fail(format!("{e:#}")))?;
                let memory = instance
                    .get_memory(&mut store, "memory")
                    .ok_or_else(|| fail("it exports no memory named `memory`".into()))?;
                store.data_mut().memory = Some(memory);
                let guest_call = instance
                    .get_typed_func::<(i32, i32), i32>(&mut store, "__guest_call")
                    .map_err(|e| fail(format!("`__guest_call` has the wrong signature: {e:#}")))?;
                // `_initialize`: a WASI reactor's constructors (Rust cdylibs
                // for wasm32-wasip1 export it).
                for init in ["_initialize", "_start", "wapc_init"] {
                    if let Ok(f) = instance.get_typed_func::<(), ()>(&mut store, init) {
                        store.data_mut().call_started = std::time::Instant::now();
                        store.set_epoch_deadline(1);
                        f.call_async(&mut store, ())
                            .await
                            .map_err(|e| fail(format!("{init} trapped: {e:#}")))?;
                    }
                }
                crate::wasi::flush_output(store.data_mut(), true);
                Ok::<_, EngineError>(guest_call)
            };
            Metered::new(std::pin::pin!(init)).await
        };
        let (guest_call, init_ns) = guest_call;
        let guest_call = guest_call?;
        Ok(WapcInstance {
            store,
            guest_call,
            fuel_per_call: cfg.fuel_per_call,
            last_actor_ns: init_ns,
        })
    }
}
