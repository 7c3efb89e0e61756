use std::fmt::Write;
use wascc_contracts::logging::{CAPABILITY_ID, OP_LOG, WriteLogRequest, level};
use wascc_contracts::{BindingRef, CapabilityProvider, ProviderError, ProviderReply, decode};

/// `wascc:logging` into the host's `tracing` log, each line tagged with the
/// actor's key under the target `actor`, its structured fields rendered as
/// `key=value` (values quoted when they hold spaces, quotes or `=`).
#[derive(Debug, Default)]
pub struct LoggingProvider;

/// Longest field name accepted: names are identifiers, not payloads.
const MAX_FIELD_NAME: usize = 64;

/// Renders fields as `k=v k2="v 2"`, refusing names that are not
/// identifiers (they would make the line ambiguous to a log parser).
fn render_fields(fields: &[(String, String)]) -> Result<String, ProviderError> {
    let mut out = String::new();
    for (k, v) in fields {
        let ident = !k.is_empty()
            && k.len() <= MAX_FIELD_NAME
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
        if !ident {
            return Err(ProviderError(format!(
                "log field name {k:?} is not an identifier (letters, digits, _ . -, at most {MAX_FIELD_NAME})"
            )));
        }
        if !out.is_empty() {
            out.push(' ');
        }
        let plain = !v.is_empty()
            && !v
                .chars()
                .any(|c| c.is_whitespace() || c == '"' || c == '=' || c.is_control());
        if plain {
            let _ = write!(out, "{k}={v}");
        } else {
            let _ = write!(out, "{k}={v:?}");
        }
    }
    Ok(out)
}

fn write_log(actor: &str, payload: &[u8]) -> Result<Vec<u8>, ProviderError> {
    let req: WriteLogRequest = decode(payload)?;
    let body = req.body.as_str();
    let fields = render_fields(&req.fields)?;
    macro_rules! emit {
        ($lvl:ident) => {
            if fields.is_empty() {
                tracing::$lvl!(target: "actor", actor, "{body}")
            } else {
                tracing::$lvl!(target: "actor", actor, fields = %fields, "{body}")
            }
        };
    }
    match req.level {
        level::ERROR => emit!(error),
        level::WARN => emit!(warn),
        level::INFO => emit!(info),
        level::DEBUG => emit!(debug),
        level::TRACE => emit!(trace),
        other => {
            return Err(ProviderError(format!(
                "log level {other} is not one of 1 (error) to 5 (trace)"
            )));
        }
    }
    Ok(Vec::new())
}

impl CapabilityProvider for LoggingProvider {
    fn capability_id(&self) -> &str {
        CAPABILITY_ID
    }

    fn name(&self) -> &str {
        "waSCC built-in logging"
    }

    fn handle_call(&self, b: BindingRef<'_>, op: &str, payload: &[u8]) -> ProviderReply {
        if op != OP_LOG {
            return ProviderReply::Ready(Err(crate::unknown_operation(CAPABILITY_ID, op)));
        }
        ProviderReply::Ready(write_log(b.actor, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::render_fields;

    fn f(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fields_render_as_key_value_pairs() {
        assert_eq!(
            render_fields(&f(&[("order", "42"), ("who", "a b"), ("q", "x=\"y\"")])).unwrap(),
            r#"order=42 who="a b" q="x=\"y\"""#
        );
        assert_eq!(render_fields(&f(&[("empty", "")])).unwrap(), r#"empty="""#);
    }

    #[test]
    fn field_names_must_be_identifiers() {
        let e = render_fields(&f(&[("a b", "1")])).unwrap_err();
        assert!(e.0.contains("\"a b\" is not an identifier"), "{e}");
        assert!(render_fields(&f(&[("", "1")])).is_err());
    }
}
