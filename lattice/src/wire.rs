//! The NATS protocol as a host's shards speak it on connections of their
//! own: a shard subscribes to its host's actor subjects, reads invocations
//! and publishes their replies on the same socket, so that the services
//! thread is not on the path of an invocation (two hand-offs between
//! parked threads fewer on the receiving host; `docs/BENCHMARKS.md`).
//!
//! Only what that needs: the handshake (`INFO`, `CONNECT`, `PING`,
//! `PONG`), `SUB`, reading `MSG`/`HMSG`, answering the server's `PING`s and
//! writing `HPUB`. Executor-agnostic, over any `AsyncRead + AsyncWrite`.
//! TLS (a `tls://` URL, or a server that requires it) is rustls over the
//! same stream ([`crate::tls`]). User and password or a token (in the
//! URL), a user nkey and a credentials file (the user JWT, and the seed
//! signing the server's nonce) are covered.

use crate::state::LatticeOptions;
use crate::tls::{Stream, TlsClient};
use futures_lite::io::BufReader;
use futures_lite::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use std::net::SocketAddr;

/// Where and how a shard connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The server's addresses (the first URL of the lattice's list,
    /// resolved).
    pub addrs: Vec<SocketAddr>,
    /// The server's name or address as the URL gives it (what its TLS
    /// certificate must name).
    pub host: String,
    /// TLS: with a `tls://` URL (then required) or a CA to trust (then
    /// used if the server requires TLS); without either, a server that
    /// requires TLS is trusted by the platform's roots.
    pub tls: Option<TlsClient>,
    /// User and password, from the URL.
    pub user: Option<(String, String)>,
    /// A token, from the URL (`nats://TOKEN@host`).
    pub token: Option<String>,
    /// An nkey, or a credentials file's JWT and seed: signs the server's
    /// nonce.
    pub signer: Option<NonceSigner>,
}

/// Answers a server's nonce: the signature by a user nkey, with the
/// user's JWT when the lattice uses a credentials file.
#[derive(Clone, PartialEq, Eq)]
pub struct NonceSigner {
    jwt: Option<String>,
    seed: String,
}

impl std::fmt::Debug for NonceSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the seed (targets are logged).
        f.debug_struct("NonceSigner")
            .field("jwt", &self.jwt.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

impl NonceSigner {
    /// From a user seed (`SU…`).
    pub fn nkey(seed: &str) -> Result<NonceSigner, String> {
        let seed = seed.trim();
        nkeys::KeyPair::from_seed(seed)
            .ok()
            .filter(|k| k.public_key().starts_with('U'))
            .ok_or("the NATS nkey is not a user seed (SU…)")?;
        Ok(NonceSigner {
            jwt: None,
            seed: seed.to_string(),
        })
    }

    /// From the text of a NATS credentials file: the user JWT and the
    /// user seed, each between its `-----BEGIN …-----` and `------END
    /// …------` lines.
    pub fn credentials(text: &str) -> Result<NonceSigner, String> {
        let block = |what: &str| {
            let mut lines = text.lines().map(str::trim);
            lines
                .by_ref()
                .find(|l| l.starts_with("-----BEGIN") && l.contains(what))
                .ok_or_else(|| format!("no {what} in the credentials file"))?;
            lines
                .find(|l| !l.is_empty())
                .filter(|l| !l.starts_with("---"))
                .map(str::to_string)
                .ok_or_else(|| format!("an empty {what} in the credentials file"))
        };
        let jwt = block("USER JWT")?;
        let mut signer = NonceSigner::nkey(&block("NKEY SEED")?)?;
        signer.jwt = Some(jwt);
        Ok(signer)
    }

    /// The `CONNECT` fields that answer `nonce`.
    fn answer(&self, nonce: &str, connect: &mut serde_json::Value) {
        let Ok(key) = nkeys::KeyPair::from_seed(&self.seed) else {
            return;
        };
        let sig = key.sign(nonce.as_bytes()).unwrap_or_default();
        connect["sig"] = data_encoding::BASE64URL_NOPAD.encode(&sig).into();
        match &self.jwt {
            Some(jwt) => connect["jwt"] = jwt.clone().into(),
            None => connect["nkey"] = key.public_key().into(),
        }
    }
}

impl Target {
    /// The target for a lattice joined with `opts`, or why shards cannot
    /// connect on their own.
    pub fn from_options(opts: &LatticeOptions) -> Result<Target, String> {
        let signer = match (&opts.credentials, &opts.nkey_seed) {
            (Some(path), _) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("credentials file {}: {e}", path.display()))
                    .and_then(|text| NonceSigner::credentials(&text))?,
            ),
            (None, Some(seed)) => Some(NonceSigner::nkey(seed)?),
            (None, None) => None,
        };
        let first = opts.url.split(',').next().unwrap_or("").trim();
        let (rest, tls_scheme) = match first.split_once("://") {
            Some(("nats", rest)) => (rest, false),
            Some(("tls", rest)) => (rest, true),
            None => (first, false),
            Some((scheme, _)) => {
                return Err(format!("the URL's scheme is {scheme}, not nats or tls"));
            }
        };
        let (auth, hostport) = match rest.rsplit_once('@') {
            Some((auth, hostport)) => (Some(auth), hostport),
            None => (None, rest),
        };
        let hostport = hostport.trim_end_matches('/');
        let has_port = match hostport.rsplit_once(':') {
            Some((h, port)) => !port.contains(']') && (!h.contains(':') || h.ends_with(']')),
            None => false,
        };
        let hostport = if has_port {
            hostport.to_string()
        } else {
            format!("{hostport}:4222")
        };
        let host = hostport
            .rsplit_once(':')
            .map_or(hostport.as_str(), |(h, _)| h)
            .to_string();
        let tls = match (tls_scheme, &opts.tls_ca) {
            (false, None) => None,
            (required, ca) => Some(TlsClient::new(&host, ca.as_deref(), required)?),
        };
        let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&hostport)
            .map_err(|e| format!("cannot resolve {hostport}: {e}"))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("{hostport} resolves to no address"));
        }
        let (user, token) = match auth.map(|a| a.split_once(':')) {
            None => (None, None),
            Some(Some((u, p))) => (Some((u.to_string(), p.to_string())), None),
            Some(None) => (None, auth.map(str::to_string)),
        };
        Ok(Target {
            addrs,
            host,
            tls,
            user,
            token,
            signer,
        })
    }

    fn connect_line(&self, name: &str, nonce: Option<&str>) -> String {
        let mut c = serde_json::json!({
            "verbose": false,
            "pedantic": false,
            "headers": true,
            "no_responders": true,
            "protocol": 1,
            "lang": "rust-wascc-shard",
            "version": env!("CARGO_PKG_VERSION"),
            "name": name,
        });
        if let Some((u, p)) = &self.user {
            c["user"] = u.clone().into();
            c["pass"] = p.clone().into();
        }
        if let Some(t) = &self.token {
            c["auth_token"] = t.clone().into();
        }
        if let (Some(signer), Some(nonce)) = (&self.signer, nonce) {
            signer.answer(nonce, &mut c);
        }
        format!("CONNECT {c}\r\n")
    }
}

/// What the server said of itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Largest message the server takes, in bytes.
    pub max_payload: usize,
}

/// Connects over `io`: reads the server's `INFO`, secures the connection
/// when the server requires TLS or the URL's scheme is `tls` (an
/// untrusted certificate or a server without TLS is an error that says
/// so), sends `CONNECT` (as `name`), then `subscribe` (`SUB` lines) and a
/// `PING`, and waits for the `PONG` (so the subscriptions are in place);
/// an `-ERR` instead, such as an authorization violation, is returned.
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    target: &Target,
    name: &str,
    subscribe: &str,
) -> Result<(BufReader<Stream<S>>, ServerLimits), String> {
    let mut stream = BufReader::new(Stream::plain(io));
    let mut line = String::new();
    read_line(&mut stream, &mut line).await?;
    let info = line
        .strip_prefix("INFO ")
        .ok_or_else(|| format!("the server did not start with INFO: {line:?}"))?;
    let info: serde_json::Value =
        serde_json::from_str(info).map_err(|e| format!("unreadable INFO: {e}"))?;
    let server_requires_tls = info["tls_required"].as_bool() == Some(true);
    let tls = match &target.tls {
        Some(tls) if tls.required || server_requires_tls => Some(tls.clone()),
        None if server_requires_tls => Some(TlsClient::new(&target.host, None, false)?),
        _ => None,
    };
    if let Some(tls) = tls {
        if !server_requires_tls && info["tls_available"].as_bool() != Some(true) {
            return Err("the URL asks for TLS but the server does not offer it".into());
        }
        // The server waits for the client's hello: nothing is buffered.
        if !stream.buffer().is_empty() {
            return Err("the server sent more than its INFO before TLS".into());
        }
        let io = stream.into_inner().into_inner();
        stream = BufReader::new(tls.connect(io).await?);
    }
    if info["headers"].as_bool() == Some(false) {
        return Err("the server does not support headers".into());
    }
    let max_payload = info["max_payload"].as_u64().unwrap_or(1 << 20) as usize;
    let nonce = info["nonce"].as_str();
    let hello = format!("{}{subscribe}PING\r\n", target.connect_line(name, nonce));
    let w = stream.get_mut();
    w.write_all(hello.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    w.flush().await.map_err(|e| e.to_string())?;
    loop {
        read_line(&mut stream, &mut line).await?;
        match line.as_str() {
            "PONG" => return Ok((stream, ServerLimits { max_payload })),
            "+OK" => {}
            l if l.starts_with("INFO ") => {}
            l => return Err(format!("the server refused the connection: {l}")),
        }
    }
}

/// A `SUB` line: `subject` in queue group `queue` (none: every
/// subscriber gets each message), as subscription `sid`.
pub fn sub(subject: &str, queue: Option<&str>, sid: u64) -> String {
    match queue {
        Some(queue) => format!("SUB {subject} {queue} {sid}\r\n"),
        None => format!("SUB {subject} {sid}\r\n"),
    }
}

/// One message from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// Its subject.
    pub subject: String,
    /// Where the reply goes.
    pub reply: Option<String>,
    /// Its headers, in order (names as sent).
    pub headers: Vec<(String, String)>,
    /// The status of the header block's first line (`NATS/1.0 503`: the
    /// server's "no responders" on a request's reply subject).
    pub status: Option<u16>,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl Msg {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server sends, as far as a shard cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A message on a subscription.
    Msg(Msg),
    /// A keep-alive: answer [`PONG`].
    Ping,
    /// An error the server reports (the connection may go on).
    Err(String),
    /// Anything else (`PONG`, `+OK`, `INFO`).
    Other,
}

/// Reads the next operation; an error when the connection ends or the
/// server sends something malformed (the caller reconnects).
pub async fn read_op<R: AsyncRead + Unpin>(
    stream: &mut futures_lite::io::BufReader<R>,
    line: &mut String,
) -> Result<Op, String> {
    read_line(stream, line).await?;
    let mut parts = line.split_ascii_whitespace();
    let bad = || format!("malformed line from the server: {line:?}");
    match parts.next() {
        Some("PING") => Ok(Op::Ping),
        Some("-ERR") => Ok(Op::Err(line.clone())),
        Some(kind @ ("MSG" | "HMSG")) => {
            let fields: Vec<&str> = parts.collect();
            let headed = kind == "HMSG";
            // MSG subject sid [reply] size; HMSG subject sid [reply] hsize size
            let sizes = if headed { 2 } else { 1 };
            let (subject, reply) = match fields.len() - sizes.min(fields.len()) {
                2 => (fields[0], None),
                3 => (fields[0], Some(fields[2].to_string())),
                _ => return Err(bad()),
            };
            let num = |s: &str| s.parse::<usize>().map_err(|_| bad());
            let total = num(fields[fields.len() - 1])?;
            let head = if headed {
                num(fields[fields.len() - 2])?
            } else {
                0
            };
            if head > total {
                return Err(bad());
            }
            let subject = subject.to_string();
            let mut body = vec![0u8; total + 2];
            stream
                .read_exact(&mut body)
                .await
                .map_err(|e| e.to_string())?;
            body.truncate(total);
            let (status, headers) = parse_headers(&body[..head]);
            let payload = body.split_off(head);
            Ok(Op::Msg(Msg {
                subject,
                reply,
                headers,
                status,
                payload,
            }))
        }
        _ => Ok(Op::Other),
    }
}

/// The status of a header block's `NATS/1.0 [status [description]]` line
/// and its `name: value` lines.
fn parse_headers(block: &[u8]) -> (Option<u16>, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(block);
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("NATS/1.0"))
        .and_then(|rest| rest.split_ascii_whitespace().next())
        .and_then(|code| code.parse().ok());
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    (status, headers)
}

async fn read_line<R: AsyncRead + Unpin>(
    stream: &mut futures_lite::io::BufReader<R>,
    line: &mut String,
) -> Result<(), String> {
    line.clear();
    match stream.read_line(line).await {
        Ok(0) => Err("the server closed the connection".into()),
        Ok(_) => {
            let end = line.trim_end_matches(['\r', '\n']).len();
            line.truncate(end);
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The answer to a server's `PING`.
pub const PONG: &[u8] = b"PONG\r\n";

/// The size of the header block [`hpub`] writes for `headers` (the
/// server counts it in the message's size).
pub fn header_block_len<V: AsRef<str>>(headers: &[(&str, V)]) -> usize {
    let lines: usize = headers
        .iter()
        .map(|(n, v)| n.len() + v.as_ref().len() + 4)
        .sum();
    "NATS/1.0\r\n".len() + lines + 2
}

/// Appends an `HPUB` of `payload` with `headers` on `subject` to `out`.
pub fn hpub<V: AsRef<str>>(
    out: &mut Vec<u8>,
    subject: &str,
    headers: &[(&str, V)],
    payload: &[u8],
) {
    hpub_request(out, subject, None, headers, payload)
}

/// Appends an `HPUB` as [`hpub`] does, with `reply` as its reply subject
/// (a request).
pub fn hpub_request<V: AsRef<str>>(
    out: &mut Vec<u8>,
    subject: &str,
    reply: Option<&str>,
    headers: &[(&str, V)],
    payload: &[u8],
) {
    use std::io::Write;
    let head = header_block_len(headers);
    let total = head + payload.len();
    let _ = match reply {
        Some(reply) => write!(out, "HPUB {subject} {reply} {head} {total}\r\n"),
        None => write!(out, "HPUB {subject} {head} {total}\r\n"),
    };
    out.extend_from_slice(b"NATS/1.0\r\n");
    for (name, value) in headers {
        for part in [name.as_bytes(), b": ", value.as_ref().as_bytes(), b"\r\n"] {
            out.extend_from_slice(part);
        }
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(url: &str) -> LatticeOptions {
        LatticeOptions {
            url: url.into(),
            lattice: "l".into(),
            ..Default::default()
        }
    }

    #[test]
    fn targets_come_from_the_first_url_and_say_what_they_cannot_do() {
        let t = Target::from_options(&opts("nats://127.0.0.1:4222,nats://10.0.0.1")).unwrap();
        assert_eq!(t.addrs, ["127.0.0.1:4222".parse::<SocketAddr>().unwrap()]);
        assert_eq!((t.user, t.token), (None, None));
        let t = Target::from_options(&opts("nats://u:p@127.0.0.1")).unwrap();
        assert_eq!(t.addrs[0].port(), 4222);
        assert_eq!(t.user, Some(("u".into(), "p".into())));
        let t = Target::from_options(&opts("127.0.0.1:4333")).unwrap();
        assert_eq!(t.addrs[0].port(), 4333);
        let t = Target::from_options(&opts("nats://s3cret@127.0.0.1:4222")).unwrap();
        assert_eq!(t.token.as_deref(), Some("s3cret"));
        let e = Target::from_options(&opts("ws://127.0.0.1:4222")).unwrap_err();
        assert!(e.contains("scheme is ws, not nats or tls"), "{e}");
        let t = Target::from_options(&opts("tls://localhost:4443")).unwrap();
        assert_eq!((t.host.as_str(), t.addrs[0].port()), ("localhost", 4443));
        assert!(t.tls.is_some_and(|t| t.required));
        let t = Target::from_options(&opts("nats://[::1]")).unwrap();
        assert_eq!((t.host.as_str(), t.addrs[0].port()), ("[::1]", 4222));
        assert!(t.tls.is_none());
        let dir = tempfile::tempdir().unwrap();
        let mut with_ca = opts("nats://127.0.0.1");
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "not a certificate").unwrap();
        with_ca.tls_ca = Some(not_pem.clone());
        let e = Target::from_options(&with_ca).unwrap_err();
        assert!(
            e.contains(&format!(
                "TLS CA file {}: no PEM certificate",
                not_pem.display()
            )),
            "{e}"
        );
        let mut creds = opts("nats://127.0.0.1");
        creds.credentials = Some("/x.creds".into());
        let e = Target::from_options(&creds).unwrap_err();
        assert!(e.contains("credentials file /x.creds"), "{e}");
        let mut nkey = opts("nats://127.0.0.1");
        nkey.nkey_seed = Some(nkeys::KeyPair::new_server().seed().unwrap());
        let e = Target::from_options(&nkey).unwrap_err();
        assert!(e.contains("not a user seed"), "{e}");
    }

    /// The `CONNECT` JSON `target` sends for `nonce`.
    fn connect_json(target: &Target, nonce: Option<&str>) -> serde_json::Value {
        let line = target.connect_line("shard", nonce);
        let json = line.strip_prefix("CONNECT ").unwrap().trim_end();
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn an_nkey_or_a_credentials_file_signs_the_servers_nonce() {
        let user = nkeys::KeyPair::new_user();
        let seed = user.seed().unwrap();
        let check = |c: &serde_json::Value, nonce: &str| {
            let sig = data_encoding::BASE64URL_NOPAD
                .decode(c["sig"].as_str().unwrap().as_bytes())
                .unwrap();
            user.verify(nonce.as_bytes(), &sig).unwrap();
            assert!(user.verify(b"another nonce", &sig).is_err());
        };
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts("nats://127.0.0.1:4222");
        o.nkey_seed = Some(format!("{seed}\n"));
        let t = Target::from_options(&o).unwrap();
        assert!(
            !format!("{t:?}").contains(&seed),
            "a target's Debug shows the seed"
        );
        let c = connect_json(&t, Some("n0nce"));
        assert_eq!(c["nkey"], user.public_key());
        assert!(c.get("jwt").is_none());
        check(&c, "n0nce");
        // No nonce (a server without auth): nothing signed.
        assert!(connect_json(&t, None).get("sig").is_none());

        let creds = format!(
            "-----BEGIN NATS USER JWT-----\neyJ0.e30.sig\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
        );
        let path = dir.path().join("user.creds");
        std::fs::write(&path, creds).unwrap();
        let mut o = opts("nats://127.0.0.1:4222");
        o.credentials = Some(path.clone());
        let t = Target::from_options(&o).unwrap();
        let c = connect_json(&t, Some("xyz"));
        assert_eq!(c["jwt"], "eyJ0.e30.sig");
        assert!(c.get("nkey").is_none());
        check(&c, "xyz");
        std::fs::write(&path, "-----BEGIN NATS USER JWT-----\neyJ0\n").unwrap();
        let e = Target::from_options(&o).unwrap_err();
        assert!(e.contains("no NKEY SEED in the credentials file"), "{e}");
    }

    fn duplex(input: &str) -> Duplex {
        Duplex {
            input: std::io::Cursor::new(input.as_bytes().to_vec()),
            output: Default::default(),
        }
    }

    fn reader(input: &str) -> BufReader<Duplex> {
        BufReader::new(duplex(input))
    }

    #[test]
    fn the_handshake_reads_info_subscribes_and_waits_for_pong() {
        let plain = Target {
            addrs: Vec::new(),
            host: "127.0.0.1".into(),
            tls: None,
            user: Some(("u".into(), "p".into())),
            token: None,
            signer: None,
        };
        let run_with = |target: &Target, server: &str| {
            let s = duplex(server);
            let sent = s.output.clone();
            let r = futures_lite::future::block_on(handshake(
                s,
                target,
                "shard-0",
                &format!("{}{}", sub("a.>", Some("q"), 1), sub("_INBOX.i.*", None, 2)),
            ));
            let sent = String::from_utf8_lossy(&sent.borrow()).into_owned();
            (r.map(|(_, limits)| limits), sent)
        };
        let run = |server: &str| run_with(&plain, server);
        let (r, sent) = run("INFO {\"max_payload\":1024,\"headers\":true}\r\nPONG\r\n");
        assert_eq!(r, Ok(ServerLimits { max_payload: 1024 }));
        assert!(sent.starts_with("CONNECT {"), "{sent}");
        assert!(
            sent.ends_with("}\r\nSUB a.> q 1\r\nSUB _INBOX.i.* 2\r\nPING\r\n"),
            "{sent}"
        );
        assert!(sent.contains("\"user\":\"u\"") && sent.contains("\"headers\":true"));
        let (r, _) = run("INFO {}\r\n-ERR 'Authorization Violation'\r\n");
        assert!(r.unwrap_err().contains("Authorization Violation"));
        // A server that requires TLS gets a TLS hello (and here closes
        // the connection), whoever vouches for it: a CA given, or the
        // platform's roots (if this machine has any); a URL that asks for
        // TLS is refused by a server without it.
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, TEST_CA).unwrap();
        let with_ca = Target {
            tls: Some(TlsClient::new("127.0.0.1", Some(&ca), false).unwrap()),
            ..plain.clone()
        };
        let (r, sent) = run_with(&with_ca, "INFO {\"tls_required\":true}\r\n");
        let e = r.unwrap_err();
        assert!(e.starts_with("TLS handshake: "), "{e}");
        assert_eq!(
            sent.as_bytes()[0],
            0x16,
            "not a TLS handshake record: {sent:?}"
        );
        let (r, sent) = run("INFO {\"tls_required\":true}\r\n");
        let e = r.unwrap_err();
        let no_roots = e.contains("no trusted root certificates on this system");
        assert!(e.starts_with("TLS handshake: ") || no_roots, "{e}");
        assert!(no_roots || sent.as_bytes()[0] == 0x16, "{sent:?}");
        // A server that offers TLS without requiring it is not asked for
        // it unless the URL says tls://.
        let (r, sent) = run_with(&with_ca, "INFO {\"tls_available\":true}\r\nPONG\r\n");
        assert!(r.is_ok() && sent.starts_with("CONNECT {"), "{r:?} {sent}");
        let tls = Target {
            tls: Some(TlsClient::new("127.0.0.1", Some(&ca), true).unwrap()),
            ..plain.clone()
        };
        let (r, sent) = run_with(&tls, "INFO {}\r\n");
        assert!(r.unwrap_err().contains("the server does not offer it"));
        assert_eq!(sent, "");
        let (r, _) = run("HELLO\r\n");
        assert!(r.unwrap_err().contains("did not start with INFO"));
        let (r, _) = run("INFO {}\r\n");
        assert!(r.unwrap_err().contains("closed the connection"));
    }

    #[test]
    fn messages_with_and_without_headers_and_a_reply_are_read_whole() {
        let head = "NATS/1.0\r\nwascc-op: Echo\r\nwascc-seal: a b c\r\n\r\n";
        let none = "NATS/1.0 503\r\n\r\n";
        let input = format!(
            "PING\r\nHMSG s.1 7 _INBOX.r {} {}\r\n{head}hi\r\nMSG s.2 8 3\r\nabc\r\nHMSG _INBOX.i.3 2 {} {}\r\n{none}\r\n-ERR 'x'\r\n+OK\r\nMSG s.3 9\r\n",
            head.len(),
            head.len() + 2,
            none.len(),
            none.len(),
        );
        let mut s = reader(&input);
        let mut line = String::new();
        let mut next = || futures_lite::future::block_on(read_op(&mut s, &mut line));
        assert_eq!(next(), Ok(Op::Ping));
        let Ok(Op::Msg(m)) = next() else {
            panic!("not a message")
        };
        assert_eq!(m.subject, "s.1");
        assert_eq!(m.reply.as_deref(), Some("_INBOX.r"));
        assert_eq!(m.header("wascc-op"), Some("Echo"));
        assert_eq!(m.header("WASCC-SEAL"), Some("a b c"));
        assert_eq!((m.payload.as_slice(), m.status), (&b"hi"[..], None));
        let Ok(Op::Msg(m)) = next() else {
            panic!("not a message")
        };
        assert_eq!(
            (m.subject.as_str(), m.reply, m.payload),
            ("s.2", None, b"abc".to_vec())
        );
        assert!(m.headers.is_empty());
        // The server's "no responders" to a request.
        let Ok(Op::Msg(m)) = next() else {
            panic!("not a message")
        };
        assert_eq!((m.status, m.payload.len()), (Some(503), 0));
        assert_eq!(next(), Ok(Op::Err("-ERR 'x'".into())));
        assert_eq!(next(), Ok(Op::Other));
        assert!(next().unwrap_err().contains("malformed"));
    }

    #[test]
    fn hpub_frames_count_headers_and_payload() {
        let mut out = Vec::new();
        hpub(
            &mut out,
            "_INBOX.x",
            &[("wascc-reply", "NH tag -")],
            b"hello",
        );
        let head = "NATS/1.0\r\nwascc-reply: NH tag -\r\n\r\n";
        let want = format!(
            "HPUB _INBOX.x {} {}\r\n{head}hello\r\n",
            head.len(),
            head.len() + 5
        );
        assert_eq!(header_block_len(&[("wascc-reply", "NH tag -")]), head.len());
        assert_eq!(String::from_utf8(out).unwrap(), want);
        let mut out = Vec::new();
        hpub_request::<&str>(&mut out, "a.b", Some("_INBOX.i.7"), &[], b"x");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HPUB a.b _INBOX.i.7 12 13\r\nNATS/1.0\r\n\r\nx\r\n"
        );
    }

    /// A CA certificate (P-256, valid until 2126) that signed nothing: a
    /// root to trust.
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----\n\
MIIBkTCCATegAwIBAgIUBYx2+XZ6Z0i+CBD1gbzP9z9UPocwCgYIKoZIzj0EAwIw\n\
HTEbMBkGA1UEAwwSd2FzY2MgdW5pdCB0ZXN0IENBMCAXDTI2MTIwNDIxNTc0OFoY\n\
DzIxMjYxMTEwMjE1NzQ4WjAdMRswGQYDVQQDDBJ3YXNjYyB1bml0IHRlc3QgQ0Ew\n\
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQJSYVV2Zsjf4cEoT0VfcZcykBNkD3f\n\
GVMSM3YL8caYOo0rc7g07/kWeVx4uCCq3a20nZhkx+QZ/jCsKPGFkFBwo1MwUTAd\n\
BgNVHQ4EFgQUihqziCGR5Sv/9gOUKS3nWTCFyCcwHwYDVR0jBBgwFoAUihqziCGR\n\
5Sv/9gOUKS3nWTCFyCcwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBF\n\
AiB9Ip4R5Clydr9s0vel/yPbCHe1dR0VOTdTMomukjfbXgIhAOjSd7BwoUQjFr5p\n\
NXnuK7RlxfSbWB6rWHRsmOZrGv8E\n\
-----END CERTIFICATE-----\n\
";

    /// Reads from `input`, writes to `output`.
    struct Duplex {
        input: std::io::Cursor<Vec<u8>>,
        output: std::rc::Rc<std::cell::RefCell<Vec<u8>>>,
    }

    impl AsyncRead for Duplex {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::task::Poll::Ready(std::io::Read::read(&mut self.input, buf))
        }
    }

    impl AsyncWrite for Duplex {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.output.borrow_mut().extend_from_slice(buf);
            std::task::Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_close(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }
}
