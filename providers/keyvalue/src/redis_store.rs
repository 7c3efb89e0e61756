//! A key-value binding on Redis: a small pool of multiplexed connections
//! that reconnect on their own, each operation bounded by a timeout.

use crate::limits::*;
use crate::values;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, RedisError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use wascc_contracts::keyvalue::*;
use wascc_contracts::{ProviderError, decode, encode};

/// How a Redis binding connects, read from its values.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// The server's URL.
    pub url: String,
    /// Connections in the pool.
    pub pool_size: usize,
    /// Time one operation may take.
    pub timeout: Duration,
}

impl RedisOptions {
    /// Reads `URL`, `POOL_SIZE` and `TIMEOUT_MS`; `None` when there is no
    /// `URL` (an in-memory binding), an error naming a malformed value.
    pub fn from_values(v: &HashMap<String, String>) -> Result<Option<Self>, ProviderError> {
        let Some(url) = v.get(values::URL) else {
            for k in [values::POOL_SIZE, values::TIMEOUT_MS] {
                if v.contains_key(k) {
                    return Err(ProviderError(format!(
                        "binding value {k} applies to Redis bindings only, and this one has no URL"
                    )));
                }
            }
            return Ok(None);
        };
        redis::Client::open(url.as_str()).map_err(|e| {
            ProviderError(format!(
                "URL {url:?} is not a Redis URL (redis://host:port/db): {e}"
            ))
        })?;
        let pool_size = match v.get(values::POOL_SIZE) {
            None => DEFAULT_POOL_SIZE,
            Some(s) => s
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_POOL_SIZE).contains(n))
                .ok_or_else(|| {
                    ProviderError(format!(
                        "POOL_SIZE {s:?} is not a number from 1 to {MAX_POOL_SIZE}"
                    ))
                })?,
        };
        let timeout = match v.get(values::TIMEOUT_MS) {
            None => DEFAULT_TIMEOUT,
            Some(s) => s
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis)
                .ok_or_else(|| {
                    ProviderError(format!("TIMEOUT_MS {s:?} is not a positive number"))
                })?,
        };
        Ok(Some(RedisOptions {
            url: url.clone(),
            pool_size,
            timeout,
        }))
    }
}

/// Adds to an integer value as the in-memory store does: the value must be a
/// 32-bit integer before and after, else nothing changes.
const ADD_SCRIPT: &str = r#"
local cur = redis.call('GET', KEYS[1])
local n = 0
if cur then
  n = tonumber(cur)
  if n == nil or n ~= math.floor(n) or not string.match(cur, '^-?%d+$') then
    return redis.error_reply('NOTINT ' .. cur)
  end
end
local add = tonumber(ARGV[1])
if n + add > 2147483647 or n + add < -2147483648 then
  return redis.error_reply('OVERFLOW ' .. n)
end
return redis.call('INCRBY', KEYS[1], add)
"#;

/// One Redis binding's connections.
pub struct RedisStore {
    opts: RedisOptions,
    pool: Vec<ConnectionManager>,
    next: AtomicUsize,
    add: redis::Script,
}

fn redis_err(e: RedisError) -> ProviderError {
    ProviderError(format!("redis: {e}"))
}

fn is_wrong_type(e: &RedisError) -> bool {
    e.code() == Some("WRONGTYPE")
}

impl RedisStore {
    /// Opens the pool; fails with the URL and the reason when the server
    /// cannot be reached within [`CONNECT_TIMEOUT`].
    pub async fn connect(opts: RedisOptions) -> Result<RedisStore, ProviderError> {
        let client = redis::Client::open(opts.url.as_str()).map_err(redis_err)?;
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(opts.timeout))
            .set_max_delay(Duration::from_millis(MAX_RECONNECT_DELAY_MS))
            .set_number_of_retries(1);
        let mut pool = Vec::with_capacity(opts.pool_size);
        for _ in 0..opts.pool_size {
            let conn = tokio::time::timeout(
                CONNECT_TIMEOUT,
                ConnectionManager::new_with_config(client.clone(), cfg.clone()),
            )
            .await
            .map_err(|_| {
                ProviderError(format!(
                    "cannot connect to redis at {}: no answer within {CONNECT_TIMEOUT:?}",
                    opts.url
                ))
            })?
            .map_err(|e| ProviderError(format!("cannot connect to redis at {}: {e}", opts.url)))?;
            pool.push(conn);
        }
        Ok(RedisStore {
            opts,
            pool,
            next: AtomicUsize::new(0),
            add: redis::Script::new(ADD_SCRIPT),
        })
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.opts.url
    }

    fn conn(&self) -> ConnectionManager {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len();
        self.pool[i].clone()
    }

    /// Checks that the server answers.
    pub async fn ping(&self) -> Result<(), ProviderError> {
        let mut c = self.conn();
        self.bounded(async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(drop)
    }

    async fn bounded<T>(
        &self,
        f: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, ProviderError> {
        match tokio::time::timeout(self.opts.timeout, f).await {
            Ok(r) => r.map_err(|e| self.fail(e)),
            Err(_) => Err(self.timed_out()),
        }
    }

    /// Performs one operation of the contract (same replies and errors as
    /// the in-memory store).
    pub async fn call(
        self: std::sync::Arc<Self>,
        op: String,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, ProviderError> {
        let mut c = self.conn();
        let c = &mut c;
        match op.as_str() {
            OP_GET | OP_KEY_EXISTS => {
                let req: GetRequest = decode(&payload)?;
                let got: Result<Option<String>, RedisError> =
                    tokio::time::timeout(self.opts.timeout, c.get(&req.key))
                        .await
                        .map_err(|_| self.timed_out())?;
                let (value, exists) = match got {
                    Ok(v) => (v.clone().unwrap_or_default(), v.is_some()),
                    // A list or set is there but has no string value.
                    Err(e) if is_wrong_type(&e) => (String::new(), true),
                    Err(e) => return Err(self.fail(e)),
                };
                Ok(encode(&GetResponse { value, exists })?)
            }
            OP_SET => {
                let req: SetRequest = decode(&payload)?;
                if req.expires_s > 0 {
                    self.bounded(c.set_ex::<_, _, ()>(&req.key, &req.value, req.expires_s as u64))
                        .await?;
                } else {
                    self.bounded(c.set::<_, _, ()>(&req.key, &req.value))
                        .await?;
                }
                Ok(encode(&SetResponse { value: req.value })?)
            }
            OP_ADD => {
                let req: AddRequest = decode(&payload)?;
                let r = tokio::time::timeout(
                    self.opts.timeout,
                    self.add.key(&req.key).arg(req.value).invoke_async::<i64>(c),
                )
                .await
                .map_err(|_| self.timed_out())?;
                match r {
                    Ok(v) => Ok(encode(&AddResponse { value: v as i32 })?),
                    Err(e) if is_wrong_type(&e) => Err(crate::wrong_type(&req.key, "string")),
                    Err(e) => match (e.code(), e.detail()) {
                        (Some("NOTINT"), Some(v)) => Err(crate::not_an_integer(&req.key, v)),
                        (Some("OVERFLOW"), Some(v)) => Err(crate::add_overflows(
                            &req.key,
                            v.trim().parse().unwrap_or_default(),
                            req.value,
                        )),
                        _ => Err(self.fail(e)),
                    },
                }
            }
            OP_DEL | OP_CLEAR => {
                let req: DelRequest = decode(&payload)?;
                self.bounded(c.del::<_, ()>(&req.key)).await?;
                Ok(encode(&DelResponse { key: req.key })?)
            }
            OP_PUSH => {
                let req: ListPushRequest = decode(&payload)?;
                let n: i64 = self
                    .typed(&req.key, "list", c.rpush(&req.key, &req.value))
                    .await?;
                Ok(encode(&ListResponse {
                    new_count: n as i32,
                })?)
            }
            OP_LIST_DEL => {
                let req: ListDelItemRequest = decode(&payload)?;
                let (_, n): (i64, i64) = self
                    .typed(
                        &req.key,
                        "list",
                        redis::pipe()
                            .atomic()
                            .lrem(&req.key, 1, &req.value)
                            .llen(&req.key)
                            .query_async(c),
                    )
                    .await?;
                Ok(encode(&ListResponse {
                    new_count: n as i32,
                })?)
            }
            OP_RANGE => {
                let req: ListRangeRequest = decode(&payload)?;
                let values: Vec<String> = self
                    .typed(
                        &req.key,
                        "list",
                        c.lrange(&req.key, req.start as isize, req.stop as isize),
                    )
                    .await?;
                Ok(encode(&ListRangeResponse { values })?)
            }
            OP_SET_ADD | OP_SET_REMOVE => {
                let req: SetMemberRequest = decode(&payload)?;
                let n: i64 = if op == OP_SET_ADD {
                    self.typed(&req.key, "set", c.sadd(&req.key, &req.value))
                        .await?
                } else {
                    self.typed(&req.key, "set", c.srem(&req.key, &req.value))
                        .await?
                };
                Ok(encode(&SetOperationResponse {
                    new_count: n as i32,
                })?)
            }
            OP_SET_QUERY => {
                let req: SetQueryRequest = decode(&payload)?;
                let mut values: Vec<String> =
                    self.typed(&req.key, "set", c.smembers(&req.key)).await?;
                values.sort_unstable();
                Ok(encode(&SetQueryResponse { values })?)
            }
            OP_SET_UNION | OP_SET_INTERSECT => {
                let req: SetCombineRequest = decode(&payload)?;
                if req.keys.is_empty() {
                    return Ok(encode(&SetQueryResponse::default())?);
                }
                let what = req.keys.join(", ");
                let mut values: Vec<String> = if op == OP_SET_UNION {
                    self.typed(&what, "set", c.sunion(&req.keys)).await?
                } else {
                    self.typed(&what, "set", c.sinter(&req.keys)).await?
                };
                values.sort_unstable();
                Ok(encode(&SetQueryResponse { values })?)
            }
            other => Err(crate::unknown_operation(other)),
        }
    }

    /// Redis's error as the actor sees it; a timeout of the connection
    /// reads the same as our own.
    fn fail(&self, e: RedisError) -> ProviderError {
        if e.is_timeout() {
            self.timed_out()
        } else {
            ProviderError(format!("redis at {}: {e}", self.opts.url))
        }
    }

    fn timed_out(&self) -> ProviderError {
        ProviderError(format!(
            "redis at {} did not answer within {:?}",
            self.opts.url, self.opts.timeout
        ))
    }

    /// Runs `f`, turning Redis's WRONGTYPE into the error the in-memory
    /// store gives.
    async fn typed<T>(
        &self,
        key: &str,
        want: &str,
        f: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, ProviderError> {
        match tokio::time::timeout(self.opts.timeout, f).await {
            Err(_) => Err(self.timed_out()),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if is_wrong_type(&e) => Err(crate::wrong_type(key, want)),
            Ok(Err(e)) => Err(self.fail(e)),
        }
    }
}
