//! The host manifest, in waSCC 0.x's shape:
//!
//! ```yaml
//! labels: { region: local }
//! actors:
//!   - ./echo.wasm                       # a path, relative to the manifest
//!   - { path: ./kv.wasm, engine: interp } # or a path with options:
//!   - { path: ./a.wasm, instances: fresh, shards: 1 } # engine, instances, shards
//! capabilities:
//!   - id: wascc:http_server             # a provider built into the host
//!   - { path: ./kv.wasm, binding: default, env: { A: b }, args: [kv] }
//!                                       # a portable (wasm) provider
//! bindings:
//!   - actor: MB4OLDIC...
//!     capability: wascc:http_server
//!     binding: default                  # optional
//!     values: { PORT: "${PORT}" }       # environment variables are expanded
//! ```

use crate::RuntimeError;
use crate::limits::MAX_MANIFEST_BYTES;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wascc_engines::EngineKind;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct DetailedActor {
    path: String,
    #[serde(default)]
    engine: Option<String>,
    #[serde(default)]
    instances: Option<String>,
    #[serde(default)]
    shards: Option<u32>,
}

/// Which instance serves an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InstancePolicy {
    /// A warm instance from the actor's idle instances on the shard (a fresh
    /// one when all are busy); memory and globals persist between
    /// invocations, as on waSCC 0.x. The default: an invocation costs a call.
    #[default]
    Reuse,
    /// A fresh instance from the pool for every invocation, dropped after it:
    /// nothing an invocation leaves in memory reaches the next one.
    Fresh,
}

impl std::str::FromStr for InstancePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "reuse" => Ok(InstancePolicy::Reuse),
            "fresh" => Ok(InstancePolicy::Fresh),
            other => Err(format!(
                "unknown instance policy {other:?}: expected reuse or fresh"
            )),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawCapability {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    path: Option<String>,
    /// waSCC 0.x manifests call it `binding_name`.
    #[serde(default, alias = "binding_name")]
    binding: Option<String>,
    #[serde(default)]
    env: Option<BTreeMap<String, String>>,
    #[serde(default)]
    args: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawBinding {
    actor: String,
    capability: String,
    #[serde(default)]
    binding: Option<String>,
    #[serde(default)]
    values: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    /// Each a path, or a mapping of options (read one by one so that an
    /// error names the entry and the field).
    #[serde(default)]
    actors: Vec<serde_yaml::Value>,
    #[serde(default)]
    capabilities: Vec<RawCapability>,
    #[serde(default)]
    bindings: Vec<RawBinding>,
}

/// An actor to start.
#[derive(Debug, Clone, PartialEq)]
pub struct ActorSpec {
    /// The module file, resolved against the manifest's folder.
    pub path: PathBuf,
    /// The engine kind, when the manifest names one for this actor.
    pub engine: Option<EngineKind>,
    /// Which instance serves an invocation.
    pub instances: InstancePolicy,
    /// On how many shards the actor runs (`None`: all of them).
    pub shards: Option<u32>,
}

/// A binding of an actor to a capability.
#[derive(Debug, Clone, PartialEq)]
pub struct BindingSpec {
    /// The actor's public key.
    pub actor: String,
    /// The capability id.
    pub capability: String,
    /// The binding name (`default` when omitted).
    pub binding: String,
    /// The binding's values, environment variables expanded.
    pub values: BTreeMap<String, String>,
}

/// A portable (wasm) capability provider to start.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PortableSpec {
    /// The module file, resolved against the manifest's folder.
    pub path: PathBuf,
    /// The binding name it serves (`default` when omitted).
    pub binding: String,
    /// Environment variables its WASI shows (none by default; values
    /// expanded from the host's environment).
    pub env: BTreeMap<String, String>,
    /// Program arguments its WASI shows (none by default).
    pub args: Vec<String>,
}

/// A capability provider to start.
#[derive(Debug, Clone, PartialEq)]
pub enum CapabilitySpec {
    /// The built-in provider of a capability id.
    Builtin(String),
    /// A portable provider; its capability id is what it reports.
    Portable(PortableSpec),
}

/// A validated manifest.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Manifest {
    /// Where it was read from.
    pub path: PathBuf,
    /// Host labels.
    pub labels: BTreeMap<String, String>,
    /// Actors to start.
    pub actors: Vec<ActorSpec>,
    /// Providers to start.
    pub capabilities: Vec<CapabilitySpec>,
    /// Bindings.
    pub bindings: Vec<BindingSpec>,
}

impl Manifest {
    /// Reads and validates a manifest file (YAML or JSON).
    pub fn load(path: &Path) -> Result<Manifest, RuntimeError> {
        let err = |reason: String| RuntimeError::Manifest {
            path: path.display().to_string(),
            reason,
        };
        let bytes = crate::read_bounded(path, MAX_MANIFEST_BYTES).map_err(err)?;
        let text = String::from_utf8(bytes).map_err(|e| err(format!("not utf-8 text: {e}")))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Manifest::parse(&text, base, &|k| std::env::var(k).ok())
            .map(|mut m| {
                m.path = path.to_path_buf();
                m
            })
            .map_err(err)
    }

    /// Parses manifest text; relative actor paths are resolved against
    /// `base`, and `${VAR}` / `$VAR` in binding values through `env`.
    pub fn parse(
        text: &str,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Manifest, String> {
        let raw: RawManifest = if text.trim().is_empty() {
            RawManifest::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| format!("invalid manifest: {e}"))?
        };
        let mut actors = Vec::new();
        for (i, a) in raw.actors.into_iter().enumerate() {
            let a = match a {
                serde_yaml::Value::String(path) => DetailedActor {
                    path,
                    engine: None,
                    instances: None,
                    shards: None,
                },
                other @ serde_yaml::Value::Mapping(_) => {
                    serde_yaml::from_value(other).map_err(|e| format!("actors[{i}]: {e}"))?
                }
                _ => {
                    return Err(format!(
                        "actors[{i}]: expected a path or a mapping with `path` and options"
                    ));
                }
            };
            let path = a.path;
            if path.trim().is_empty() {
                return Err(format!("actors[{i}]: empty path"));
            }
            let instances = a
                .instances
                .map(|p| p.parse().map_err(|e| format!("actors[{i}] ({path}): {e}")))
                .transpose()?
                .unwrap_or_default();
            if a.shards == Some(0) {
                return Err(format!(
                    "actors[{i}] ({path}): shards must be at least 1 (omit it to run on every shard)"
                ));
            }
            let engine = a
                .engine
                .map(|e| {
                    e.parse::<EngineKind>()
                        .map_err(|e| format!("actors[{i}] ({path}): {e}"))
                })
                .transpose()?;
            let p = PathBuf::from(&path);
            actors.push(ActorSpec {
                path: if p.is_absolute() { p } else { base.join(p) },
                engine,
                instances,
                shards: a.shards,
            });
        }
        let mut capabilities = Vec::new();
        for (i, c) in raw.capabilities.into_iter().enumerate() {
            match (c.id, c.path) {
                (Some(id), None) => {
                    let misplaced = [
                        ("binding", c.binding.is_some()),
                        ("env", c.env.is_some()),
                        ("args", c.args.is_some()),
                    ];
                    if let Some((field, _)) = misplaced.iter().find(|(_, set)| *set) {
                        return Err(format!(
                            "capabilities[{i}] ({id}): {field} applies to a portable provider (path:), \
                             not to a built-in one; a binding name belongs on each binding"
                        ));
                    }
                    if capabilities.contains(&CapabilitySpec::Builtin(id.clone())) {
                        return Err(format!("capabilities[{i}]: {id} is listed twice"));
                    }
                    capabilities.push(CapabilitySpec::Builtin(id))
                }
                (None, Some(path)) => {
                    let lower = path.to_ascii_lowercase();
                    if [".so", ".dylib", ".dll"].iter().any(|e| lower.ends_with(e)) {
                        return Err(format!(
                            "capabilities[{i}]: {path:?} is a native plugin (waSCC 0.x); this host loads \
                             portable (wasm) providers by path and has its providers built in (id: wascc:keyvalue)"
                        ));
                    }
                    if path.trim().is_empty() {
                        return Err(format!("capabilities[{i}]: empty path"));
                    }
                    let binding = c
                        .binding
                        .filter(|b| !b.is_empty())
                        .unwrap_or_else(|| wascc_contracts::DEFAULT_BINDING.to_string());
                    let mut env_vars = BTreeMap::new();
                    for (k, v) in c.env.unwrap_or_default() {
                        if k.is_empty() || k.contains('=') {
                            return Err(format!(
                                "capabilities[{i}] ({path}): environment variable name {k:?} is empty or holds '='"
                            ));
                        }
                        let v = expand_env(&v, env)
                            .map_err(|e| format!("capabilities[{i}] ({path}) env {k}: {e}"))?;
                        env_vars.insert(k, v);
                    }
                    let p = PathBuf::from(&path);
                    capabilities.push(CapabilitySpec::Portable(PortableSpec {
                        path: if p.is_absolute() { p } else { base.join(p) },
                        binding,
                        env: env_vars,
                        args: c.args.unwrap_or_default(),
                    }));
                }
                (Some(id), Some(path)) => {
                    return Err(format!(
                        "capabilities[{i}]: give either id ({id}, a built-in provider) or path ({path}, a \
                         portable provider), not both: a portable provider reports its own capability id"
                    ));
                }
                (None, None) => {
                    return Err(format!(
                        "capabilities[{i}]: needs an id (built-in provider) or a path (portable provider)"
                    ));
                }
            }
        }
        let mut bindings = Vec::new();
        for (i, b) in raw.bindings.into_iter().enumerate() {
            let binding = b
                .binding
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "default".to_string());
            let mut values = BTreeMap::new();
            for (k, v) in b.values.unwrap_or_default() {
                let v = expand_env(&v, env).map_err(|e| format!("bindings[{i}] value {k}: {e}"))?;
                values.insert(k, v);
            }
            if bindings.iter().any(|x: &BindingSpec| {
                x.actor == b.actor && x.capability == b.capability && x.binding == binding
            }) {
                return Err(format!(
                    "bindings[{i}]: actor {} is bound to {} under binding {binding:?} twice",
                    b.actor, b.capability
                ));
            }
            bindings.push(BindingSpec {
                actor: b.actor,
                capability: b.capability,
                binding,
                values,
            });
        }
        Ok(Manifest {
            path: PathBuf::new(),
            labels: raw.labels,
            actors,
            capabilities,
            bindings,
        })
    }
}

/// Expands `${NAME}` and `$NAME` from `env`; `$$` is a literal `$`. An unset
/// variable is an error, not an empty string: a missing `PORT` must not
/// silently become port 0.
pub fn expand_env(value: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        let (name, after) = if let Some(r) = rest.strip_prefix('{') {
            let end = r
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {value:?}"))?;
            (&r[..end], &r[end + 1..])
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        if name.is_empty() {
            out.push('$');
            continue;
        }
        let v = env(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
        out.push_str(&v);
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}
