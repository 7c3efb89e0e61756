//! `wascc:keyvalue`: a key-value store with atomic counters, lists and sets.

use serde::{Deserialize, Serialize};

/// The capability id of the key-value store.
pub const CAPABILITY_ID: &str = "wascc:keyvalue";
/// Atomically add to an integer value.
pub const OP_ADD: &str = "Add";
/// Read a value.
pub const OP_GET: &str = "Get";
/// Write a value.
pub const OP_SET: &str = "Set";
/// Delete a key.
pub const OP_DEL: &str = "Del";
/// Delete a list.
pub const OP_CLEAR: &str = "Clear";
/// Read a range of a list.
pub const OP_RANGE: &str = "Range";
/// Append to a list.
pub const OP_PUSH: &str = "Push";
/// Remove an item from a list.
pub const OP_LIST_DEL: &str = "ListItemDelete";
/// Add a member to a set.
pub const OP_SET_ADD: &str = "SetAdd";
/// Remove a member from a set.
pub const OP_SET_REMOVE: &str = "SetRemove";
/// Union of sets.
pub const OP_SET_UNION: &str = "SetUnion";
/// Intersection of sets.
pub const OP_SET_INTERSECT: &str = "SetIntersection";
/// Members of a set.
pub const OP_SET_QUERY: &str = "SetQuery";
/// Whether a key exists.
pub const OP_KEY_EXISTS: &str = "KeyExists";

/// `Get` and `KeyExists` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct GetRequest {
    /// The key.
    pub key: String,
}

/// `Get` and `KeyExists` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct GetResponse {
    /// The value, empty when absent.
    pub value: String,
    /// Whether the key exists.
    pub exists: bool,
}

/// `Set` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SetRequest {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
    /// Seconds to live; 0 keeps the value.
    #[serde(rename = "expires", alias = "expires_s", default)]
    pub expires_s: i32,
}

/// `Set` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SetResponse {
    /// The value written.
    pub value: String,
}

/// `Del` and `Clear` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DelRequest {
    /// The key.
    pub key: String,
}

/// `Del` and `Clear` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DelResponse {
    /// The key deleted.
    pub key: String,
}

/// `Add` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AddRequest {
    /// The key.
    pub key: String,
    /// The amount to add.
    pub value: i32,
}

/// `Add` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AddResponse {
    /// The value after the addition.
    pub value: i32,
}

/// `Push` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ListPushRequest {
    /// The list's key.
    pub key: String,
    /// The item.
    pub value: String,
}

/// `ListItemDelete` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ListDelItemRequest {
    /// The list's key.
    pub key: String,
    /// The item.
    pub value: String,
}

/// `Range` request; `start` and `stop` are inclusive, negative counts from the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ListRangeRequest {
    /// The list's key.
    pub key: String,
    /// First index.
    pub start: i32,
    /// Last index, inclusive.
    pub stop: i32,
}

/// `Range` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ListRangeResponse {
    /// The items.
    #[serde(default)]
    pub values: Vec<String>,
}

/// `Push` and `ListItemDelete` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse {
    /// The list's length afterwards.
    #[serde(alias = "new_count")]
    pub new_count: i32,
}

/// `SetAdd` and `SetRemove` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SetMemberRequest {
    /// The set's key.
    pub key: String,
    /// The member.
    pub value: String,
}

/// `SetQuery` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SetQueryRequest {
    /// The set's key.
    pub key: String,
}

/// `SetQuery`, `SetUnion` and `SetIntersection` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SetQueryResponse {
    /// The members, sorted.
    #[serde(default)]
    pub values: Vec<String>,
}

/// `SetUnion` and `SetIntersection` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SetCombineRequest {
    /// The sets' keys.
    #[serde(default)]
    pub keys: Vec<String>,
}

/// `SetAdd` and `SetRemove` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SetOperationResponse {
    /// Members added or removed (0 or 1).
    #[serde(alias = "new_count")]
    pub new_count: i32,
}
