use crate::wrong_type;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use wascc_contracts::keyvalue::*;
use wascc_contracts::{ProviderError, decode, encode};

#[derive(Debug)]
enum Value {
    Str(String, Option<Instant>),
    List(Vec<String>),
    Set(BTreeSet<String>),
}

/// `wascc:keyvalue` in memory, with Redis's semantics (the shared test suite
/// runs against both). Every binding name is a store of its own, so two
/// named bindings of one actor do not see each other's keys; all actors
/// bound under the same binding name share that store, as with one Redis.
///
/// One store for every shard (behind a mutex held for one operation), not
/// one per shard: an actor runs on several shards and must see one counter.
#[derive(Debug, Default)]
pub struct MemoryKeyValue {
    stores: Mutex<HashMap<String, HashMap<String, Value>>>,
}

impl MemoryKeyValue {
    fn with_store<R>(&self, binding: &str, f: impl FnOnce(&mut HashMap<String, Value>) -> R) -> R {
        let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        let store = stores.entry(binding.to_string()).or_default();
        f(store)
    }
}

fn live_str<'a>(
    store: &'a mut HashMap<String, Value>,
    key: &str,
) -> Result<Option<&'a mut String>, ProviderError> {
    let expired = matches!(store.get(key), Some(Value::Str(_, Some(at))) if *at <= Instant::now());
    if expired {
        store.remove(key);
    }
    match store.get_mut(key) {
        None => Ok(None),
        Some(Value::Str(s, _)) => Ok(Some(s)),
        Some(_) => Err(wrong_type(key, "string")),
    }
}

/// The list at `key`, created empty when absent (Redis creates on push).
fn list<'a>(
    store: &'a mut HashMap<String, Value>,
    key: &str,
) -> Result<&'a mut Vec<String>, ProviderError> {
    match store
        .entry(key.to_string())
        .or_insert_with(|| Value::List(Vec::new()))
    {
        Value::List(l) => Ok(l),
        _ => Err(wrong_type(key, "list")),
    }
}

/// The set at `key`, created empty when absent (Redis creates on add).
fn set<'a>(
    store: &'a mut HashMap<String, Value>,
    key: &str,
) -> Result<&'a mut BTreeSet<String>, ProviderError> {
    match store
        .entry(key.to_string())
        .or_insert_with(|| Value::Set(BTreeSet::new()))
    {
        Value::Set(s) => Ok(s),
        _ => Err(wrong_type(key, "set")),
    }
}

fn set_members(
    store: &HashMap<String, Value>,
    key: &str,
) -> Result<BTreeSet<String>, ProviderError> {
    match store.get(key) {
        None => Ok(BTreeSet::new()),
        Some(Value::Set(s)) => Ok(s.clone()),
        Some(_) => Err(wrong_type(key, "set")),
    }
}

/// Resolves a Redis-style inclusive range (negative indexes count from the end).
fn range_bounds(len: usize, start: i32, stop: i32) -> Option<(usize, usize)> {
    let len = len as i64;
    let fix = |i: i32| if i < 0 { len + i as i64 } else { i as i64 };
    let (s, e) = (fix(start).max(0), fix(stop).min(len - 1));
    (s <= e && s < len).then_some((s as usize, e as usize))
}

/// Redis deletes a list or set when its last member goes; so do we, so that
/// `KeyExists` agrees.
fn drop_if_empty(store: &mut HashMap<String, Value>, key: &str) {
    let empty = match store.get(key) {
        Some(Value::List(l)) => l.is_empty(),
        Some(Value::Set(s)) => s.is_empty(),
        _ => false,
    };
    if empty {
        store.remove(key);
    }
}

impl MemoryKeyValue {
    /// Performs one operation of the contract on the store of `binding`.
    pub fn call(&self, binding: &str, op: &str, payload: &[u8]) -> Result<Vec<u8>, ProviderError> {
        self.with_store(binding, |store| match op {
            OP_GET | OP_KEY_EXISTS => {
                let req: GetRequest = decode(payload)?;
                // A list or set is there but has no string value: exists, empty.
                let value = live_str(store, &req.key).ok().flatten().cloned();
                let exists = value.is_some() || store.contains_key(&req.key);
                Ok(encode(&GetResponse {
                    value: value.unwrap_or_default(),
                    exists,
                })?)
            }
            OP_SET => {
                let req: SetRequest = decode(payload)?;
                let expiry = (req.expires_s > 0)
                    .then(|| Instant::now() + Duration::from_secs(req.expires_s as u64));
                store.insert(req.key, Value::Str(req.value.clone(), expiry));
                Ok(encode(&SetResponse { value: req.value })?)
            }
            OP_ADD => {
                let req: AddRequest = decode(payload)?;
                let current = match live_str(store, &req.key)? {
                    None => 0,
                    Some(s) => s
                        .parse::<i32>()
                        .map_err(|_| crate::not_an_integer(&req.key, s))?,
                };
                let value = current
                    .checked_add(req.value)
                    .ok_or_else(|| crate::add_overflows(&req.key, current, req.value))?;
                // Like INCRBY: the value changes, its time to live stays.
                match store.get_mut(&req.key) {
                    Some(Value::Str(s, _)) => *s = value.to_string(),
                    _ => {
                        store.insert(req.key, Value::Str(value.to_string(), None));
                    }
                }
                Ok(encode(&AddResponse { value })?)
            }
            OP_DEL | OP_CLEAR => {
                let req: DelRequest = decode(payload)?;
                store.remove(&req.key);
                Ok(encode(&DelResponse { key: req.key })?)
            }
            OP_PUSH => {
                let req: ListPushRequest = decode(payload)?;
                let l = list(store, &req.key)?;
                l.push(req.value);
                Ok(encode(&ListResponse {
                    new_count: l.len() as i32,
                })?)
            }
            OP_LIST_DEL => {
                let req: ListDelItemRequest = decode(payload)?;
                let new_count = match store.get_mut(&req.key) {
                    None => 0,
                    Some(Value::List(l)) => {
                        if let Some(pos) = l.iter().position(|v| *v == req.value) {
                            l.remove(pos);
                        }
                        l.len() as i32
                    }
                    Some(_) => return Err(wrong_type(&req.key, "list")),
                };
                drop_if_empty(store, &req.key);
                Ok(encode(&ListResponse { new_count })?)
            }
            OP_RANGE => {
                let req: ListRangeRequest = decode(payload)?;
                let values = match store.get(&req.key) {
                    None => Vec::new(),
                    Some(Value::List(l)) => match range_bounds(l.len(), req.start, req.stop) {
                        Some((s, e)) => l[s..=e].to_vec(),
                        None => Vec::new(),
                    },
                    Some(_) => return Err(wrong_type(&req.key, "list")),
                };
                Ok(encode(&ListRangeResponse { values })?)
            }
            OP_SET_ADD | OP_SET_REMOVE => {
                let req: SetMemberRequest = decode(payload)?;
                let changed = if op == OP_SET_ADD {
                    set(store, &req.key)?.insert(req.value)
                } else {
                    let removed = match store.get_mut(&req.key) {
                        None => false,
                        Some(Value::Set(s)) => s.remove(&req.value),
                        Some(_) => return Err(wrong_type(&req.key, "set")),
                    };
                    drop_if_empty(store, &req.key);
                    removed
                };
                Ok(encode(&SetOperationResponse {
                    new_count: changed as i32,
                })?)
            }
            OP_SET_QUERY => {
                let req: SetQueryRequest = decode(payload)?;
                let values = set_members(store, &req.key)?.into_iter().collect();
                Ok(encode(&SetQueryResponse { values })?)
            }
            OP_SET_UNION | OP_SET_INTERSECT => {
                let req: SetCombineRequest = decode(payload)?;
                let mut acc: Option<BTreeSet<String>> = None;
                for key in &req.keys {
                    let members = set_members(store, key)?;
                    acc = Some(match acc {
                        None => members,
                        Some(a) if op == OP_SET_UNION => a.union(&members).cloned().collect(),
                        Some(a) => a.intersection(&members).cloned().collect(),
                    });
                }
                let values = acc.unwrap_or_default().into_iter().collect();
                Ok(encode(&SetQueryResponse { values })?)
            }
            other => Err(crate::unknown_operation(other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::range_bounds;

    #[test]
    fn ranges_follow_redis() {
        assert_eq!(range_bounds(5, 0, -1), Some((0, 4)));
        assert_eq!(range_bounds(5, 1, 2), Some((1, 2)));
        assert_eq!(range_bounds(5, -2, -1), Some((3, 4)));
        assert_eq!(range_bounds(5, 3, 1), None);
        assert_eq!(range_bounds(0, 0, -1), None);
        assert_eq!(range_bounds(5, 0, 100), Some((0, 4)));
    }
}
