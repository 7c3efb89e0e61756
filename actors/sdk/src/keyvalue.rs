//! The `wascc:keyvalue` client.

use crate::{HandlerResult, host_call};
use wascc_contracts::keyvalue::*;
use wascc_contracts::{decode, encode};

/// A key-value store reached through one binding.
pub struct KeyValue {
    binding: String,
}

/// The store bound as `default`.
pub fn default() -> KeyValue {
    host("default")
}

/// The store bound under `binding`.
pub fn host(binding: &str) -> KeyValue {
    KeyValue {
        binding: binding.to_string(),
    }
}

impl KeyValue {
    fn call<Req: serde::Serialize, Resp: for<'de> serde::Deserialize<'de>>(
        &self,
        op: &str,
        req: &Req,
    ) -> HandlerResult<Resp> {
        let reply = host_call(&self.binding, CAPABILITY_ID, op, &encode(req)?)?;
        Ok(decode(&reply)?)
    }

    /// The value of `key`, if any.
    pub fn get(&self, key: &str) -> HandlerResult<Option<String>> {
        let r: GetResponse = self.call(OP_GET, &GetRequest { key: key.into() })?;
        Ok(r.exists.then_some(r.value))
    }

    /// Sets `key`; `expires_s` 0 keeps it forever.
    pub fn set(&self, key: &str, value: &str, expires_s: i32) -> HandlerResult<()> {
        let _: SetResponse = self.call(
            OP_SET,
            &SetRequest {
                key: key.into(),
                value: value.into(),
                expires_s,
            },
        )?;
        Ok(())
    }

    /// Adds `value` to the integer at `key` and returns the result.
    pub fn atomic_add(&self, key: &str, value: i32) -> HandlerResult<i32> {
        let r: AddResponse = self.call(
            OP_ADD,
            &AddRequest {
                key: key.into(),
                value,
            },
        )?;
        Ok(r.value)
    }

    /// Deletes `key`.
    pub fn del(&self, key: &str) -> HandlerResult<()> {
        let _: DelResponse = self.call(OP_DEL, &DelRequest { key: key.into() })?;
        Ok(())
    }

    /// Whether `key` exists.
    pub fn exists(&self, key: &str) -> HandlerResult<bool> {
        let r: GetResponse = self.call(OP_KEY_EXISTS, &GetRequest { key: key.into() })?;
        Ok(r.exists)
    }

    /// Appends to a list; returns its new length.
    pub fn list_push(&self, key: &str, value: &str) -> HandlerResult<i32> {
        let r: ListResponse = self.call(
            OP_PUSH,
            &ListPushRequest {
                key: key.into(),
                value: value.into(),
            },
        )?;
        Ok(r.new_count)
    }

    /// Removes an item from a list; returns its new length.
    pub fn list_del_item(&self, key: &str, value: &str) -> HandlerResult<i32> {
        let r: ListResponse = self.call(
            OP_LIST_DEL,
            &ListDelItemRequest {
                key: key.into(),
                value: value.into(),
            },
        )?;
        Ok(r.new_count)
    }

    /// Items `start..=stop` of a list (negative counts from the end).
    pub fn list_range(&self, key: &str, start: i32, stop: i32) -> HandlerResult<Vec<String>> {
        let r: ListRangeResponse = self.call(
            OP_RANGE,
            &ListRangeRequest {
                key: key.into(),
                start,
                stop,
            },
        )?;
        Ok(r.values)
    }

    /// Deletes a list.
    pub fn list_clear(&self, key: &str) -> HandlerResult<()> {
        let _: DelResponse = self.call(OP_CLEAR, &DelRequest { key: key.into() })?;
        Ok(())
    }

    /// Adds a member to a set; returns 1 if it was new.
    pub fn set_add(&self, key: &str, value: &str) -> HandlerResult<i32> {
        let r: SetOperationResponse = self.call(
            OP_SET_ADD,
            &SetMemberRequest {
                key: key.into(),
                value: value.into(),
            },
        )?;
        Ok(r.new_count)
    }

    /// Removes a member from a set; returns 1 if it was there.
    pub fn set_remove(&self, key: &str, value: &str) -> HandlerResult<i32> {
        let r: SetOperationResponse = self.call(
            OP_SET_REMOVE,
            &SetMemberRequest {
                key: key.into(),
                value: value.into(),
            },
        )?;
        Ok(r.new_count)
    }

    /// The members of a set.
    pub fn set_members(&self, key: &str) -> HandlerResult<Vec<String>> {
        let r: SetQueryResponse = self.call(OP_SET_QUERY, &SetQueryRequest { key: key.into() })?;
        Ok(r.values)
    }

    /// The union of sets.
    pub fn set_union(&self, keys: &[&str]) -> HandlerResult<Vec<String>> {
        let keys = keys.iter().map(|k| k.to_string()).collect();
        let r: SetQueryResponse = self.call(OP_SET_UNION, &SetCombineRequest { keys })?;
        Ok(r.values)
    }

    /// The intersection of sets.
    pub fn set_intersect(&self, keys: &[&str]) -> HandlerResult<Vec<String>> {
        let keys = keys.iter().map(|k| k.to_string()).collect();
        let r: SetQueryResponse = self.call(OP_SET_INTERSECT, &SetCombineRequest { keys })?;
        Ok(r.values)
    }
}
