//! memkv: an example portable capability provider. It provides
//! `wascc:keyvalue` (`Add`, `Get`, `Set` with expiry, `Del`, `KeyExists`)
//! from its own linear memory, one namespace per actor and binding.
//!
//! Built for `wasm32-wasip1` and signed with `prov: true`. It uses WASI for
//! what a provider may need without touching the machine: the clock (for
//! expiry), an environment variable (`MEMKV_DEFAULT_MAX_KEYS`, the key limit
//! of bindings that set none) and standard output (a log line per binding).
//!
//! Binding values: `MAX_KEYS` (optional), the most keys the binding holds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use wascc_actor::contracts::core::{
    CapabilityConfiguration, CapabilityDescriptor, HealthRequest, OP_BIND_ACTOR,
    OP_GET_CAPABILITY_DESCRIPTOR, OP_HEALTH_REQUEST, OP_REMOVE_ACTOR, OperationDescriptor,
    OperationDirection,
};
use wascc_actor::contracts::keyvalue::*;
use wascc_actor::prelude::*;
use wascc_actor::provider::current_caller;

actor_handlers! {
    OP_GET_CAPABILITY_DESCRIPTOR => describe,
    OP_BIND_ACTOR => bind,
    OP_REMOVE_ACTOR => remove,
    OP_HEALTH_REQUEST => health,
    OP_ADD => add,
    OP_GET => get,
    OP_SET => set,
    OP_DEL => del,
    OP_KEY_EXISTS => exists,
}

/// Keys a binding holds when neither `MAX_KEYS` nor the environment says.
const DEFAULT_MAX_KEYS: usize = 10_000;

struct Entry {
    value: String,
    expires: Option<SystemTime>,
}

struct Space {
    max_keys: usize,
    entries: HashMap<String, Entry>,
}

/// (actor, binding) → its keys. A provider instance serves one call at a
/// time; the mutex only satisfies `static`.
static SPACES: Mutex<Option<HashMap<(String, String), Space>>> = Mutex::new(None);

fn describe(_: HealthRequest) -> HandlerResult<CapabilityDescriptor> {
    let op = |name: &str, doctext: &str| OperationDescriptor {
        name: name.to_string(),
        direction: OperationDirection::ToProvider,
        doctext: doctext.to_string(),
    };
    Ok(CapabilityDescriptor {
        id: CAPABILITY_ID.to_string(),
        name: "memkv: key-value in the provider's memory".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        revision: 1,
        long_description: "wascc:keyvalue (Add, Get, Set, Del, KeyExists) in a portable provider"
            .to_string(),
        supported_operations: vec![
            op(OP_ADD, "adds to a counter"),
            op(OP_GET, "reads a value"),
            op(OP_SET, "writes a value, with an optional expiry in seconds"),
            op(OP_DEL, "deletes a key"),
            op(OP_KEY_EXISTS, "whether a key exists"),
        ],
    })
}

fn default_max_keys() -> HandlerResult<usize> {
    match std::env::var("MEMKV_DEFAULT_MAX_KEYS") {
        Ok(v) => Ok(v.parse().map_err(|_| {
            format!("environment variable MEMKV_DEFAULT_MAX_KEYS={v:?} is not a number")
        })?),
        Err(_) => Ok(DEFAULT_MAX_KEYS),
    }
}

fn bind(cfg: CapabilityConfiguration) -> HandlerResult<()> {
    let mut max_keys = default_max_keys()?;
    for (k, v) in &cfg.values {
        match k.as_str() {
            "MAX_KEYS" => {
                max_keys = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("MAX_KEYS {v:?} is not a positive number"))?;
            }
            other => {
                return Err(format!("unknown binding value {other} (memkv takes MAX_KEYS)").into());
            }
        }
    }
    let binding = current_caller()?.binding;
    println!(
        "memkv: bound {} ({binding}), at most {max_keys} keys",
        cfg.module
    );
    let mut spaces = SPACES.lock().map_err(|_| "memkv state poisoned")?;
    spaces.get_or_insert_with(HashMap::new).insert(
        (cfg.module, binding),
        Space {
            max_keys,
            entries: HashMap::new(),
        },
    );
    Ok(())
}

fn remove(cfg: CapabilityConfiguration) -> HandlerResult<()> {
    let binding = current_caller()?.binding;
    let mut spaces = SPACES.lock().map_err(|_| "memkv state poisoned")?;
    if let Some(s) = spaces.as_mut() {
        s.remove(&(cfg.module, binding));
    }
    Ok(())
}

fn health(_: HealthRequest) -> HandlerResult<()> {
    Ok(())
}

/// Runs `f` on the calling actor's namespace, expired keys dropped.
fn with_space<T>(f: impl FnOnce(&mut Space) -> HandlerResult<T>) -> HandlerResult<T> {
    let caller = current_caller()?;
    let mut spaces = SPACES.lock().map_err(|_| "memkv state poisoned")?;
    let space = spaces
        .as_mut()
        .and_then(|s| s.get_mut(&(caller.actor.clone(), caller.binding.clone())))
        .ok_or_else(|| format!("actor {} is not bound to memkv", caller.actor))?;
    let now = SystemTime::now();
    space
        .entries
        .retain(|_, e| e.expires.is_none_or(|t| t > now));
    f(space)
}

fn put(
    space: &mut Space,
    key: String,
    value: String,
    expires: Option<SystemTime>,
) -> HandlerResult<()> {
    if !space.entries.contains_key(&key) && space.entries.len() >= space.max_keys {
        return Err(format!("memkv: the binding is full ({} keys)", space.max_keys).into());
    }
    space.entries.insert(key, Entry { value, expires });
    Ok(())
}

fn add(req: AddRequest) -> HandlerResult<AddResponse> {
    with_space(|s| {
        let (current, expires) = match s.entries.get(&req.key) {
            Some(e) => (
                e.value
                    .parse::<i32>()
                    .map_err(|_| format!("the value of {} is not a number", req.key))?,
                e.expires,
            ),
            None => (0, None),
        };
        let value = current
            .checked_add(req.value)
            .ok_or_else(|| format!("adding {} to {} overflows", req.value, req.key))?;
        put(s, req.key, value.to_string(), expires)?;
        Ok(AddResponse { value })
    })
}

fn get(req: GetRequest) -> HandlerResult<GetResponse> {
    with_space(|s| {
        Ok(match s.entries.get(&req.key) {
            Some(e) => GetResponse {
                value: e.value.clone(),
                exists: true,
            },
            None => GetResponse::default(),
        })
    })
}

fn exists(req: GetRequest) -> HandlerResult<GetResponse> {
    with_space(|s| {
        Ok(GetResponse {
            value: String::new(),
            exists: s.entries.contains_key(&req.key),
        })
    })
}

fn set(req: SetRequest) -> HandlerResult<SetResponse> {
    if req.expires_s < 0 {
        return Err(format!("expires {} is negative", req.expires_s).into());
    }
    let expires =
        (req.expires_s > 0).then(|| SystemTime::now() + Duration::from_secs(req.expires_s as u64));
    with_space(|s| {
        put(s, req.key, req.value.clone(), expires)?;
        Ok(SetResponse { value: req.value })
    })
}

fn del(req: DelRequest) -> HandlerResult<DelResponse> {
    with_space(|s| {
        s.entries.remove(&req.key);
        Ok(DelResponse { key: req.key })
    })
}
