//! TLS for the connections shards make themselves ([`crate::wire`]):
//! rustls driven over any `futures_lite` stream (a shard's glommio socket),
//! so that a lattice whose servers require TLS keeps its invocations on
//! the shards instead of sending every one through the services thread
//! (which halved throughput; `docs/BENCHMARKS.md`).
//!
//! Trust is what the services thread's client (async-nats) trusts for the
//! same options: the CA file given (`--nats-tls-ca`), otherwise the
//! platform's roots.

use futures_lite::{AsyncRead, AsyncWrite};
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{self, Read, Write};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// How a shard's connection is secured: the client configuration and the
/// name the server's certificate must carry.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
    /// The URL's scheme is `tls`: a server that does not offer TLS is
    /// refused (otherwise TLS is used when the server requires it).
    pub required: bool,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

impl PartialEq for TlsClient {
    fn eq(&self, other: &TlsClient) -> bool {
        Arc::ptr_eq(&self.config, &other.config)
            && self.server_name == other.server_name
            && self.required == other.required
    }
}

impl Eq for TlsClient {}

impl TlsClient {
    /// For the server `host` (a name or an address, as in the URL),
    /// trusting the certificates in the PEM file `ca` or, without one, the
    /// platform's roots. Errors name the file or the host.
    pub fn new(host: &str, ca: Option<&Path>, required: bool) -> Result<TlsClient, String> {
        let mut roots = rustls::RootCertStore::empty();
        match ca {
            Some(ca) => {
                let certs = read_certificates(ca)?;
                for cert in certs {
                    roots
                        .add(cert)
                        .map_err(|e| format!("TLS CA file {}: {e}", ca.display()))?;
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(native.certs);
                if added == 0 {
                    let why = native.errors.first().map(|e| format!(": {e}"));
                    return Err(format!(
                        "no trusted root certificates on this system{}; give the server's CA with --nats-tls-ca",
                        why.unwrap_or_default()
                    ));
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host:?} is not a TLS server name: {e}"))?;
        Ok(TlsClient {
            config: Arc::new(config),
            server_name,
            required,
        })
    }

    /// Secures `io`: the TLS handshake, done before anything else is
    /// written (so that an untrusted certificate is reported as such).
    pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: S,
    ) -> Result<Stream<S>, String> {
        let conn = rustls::ClientConnection::new(self.config.clone(), self.server_name.clone())
            .map_err(|e| format!("TLS: {e}"))?;
        let mut stream = Stream {
            io,
            tls: Some(Box::new(conn)),
            eof: false,
        };
        std::future::poll_fn(|cx| stream.poll_handshake(cx))
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        Ok(stream)
    }
}

/// The certificates of a PEM file; an error names the file when it cannot
/// be read or has none.
pub(crate) fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let named = |e: &dyn std::fmt::Display| format!("TLS CA file {}: {e}", path.display());
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| named(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| named(&e))?;
    if certs.is_empty() {
        return Err(named(&"no PEM certificate in it"));
    }
    Ok(certs)
}

/// A connection, in the clear or over TLS.
pub struct Stream<S> {
    io: S,
    /// The TLS session (none: in the clear).
    tls: Option<Box<rustls::ClientConnection>>,
    /// The peer closed the socket.
    eof: bool,
}

impl<S> Stream<S> {
    /// `io` in the clear.
    pub fn plain(io: S) -> Stream<S> {
        Stream {
            io,
            tls: None,
            eof: false,
        }
    }

    /// The socket (a TLS session goes with the rest).
    pub fn into_inner(self) -> S {
        self.io
    }
}

/// The socket as the blocking `Read`/`Write` rustls drives, for one poll:
/// `Pending` is `WouldBlock` (the waker is registered with the socket).
struct Polled<'a, 'b, S> {
    io: &'a mut S,
    cx: &'a mut Context<'b>,
}

impl<S: AsyncRead + Unpin> Read for Polled<'_, '_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.io).poll_read(self.cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<S: AsyncWrite + Unpin> Write for Polled<'_, '_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.io).poll_write(self.cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match Pin::new(&mut *self.io).poll_flush(self.cx) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// `Pending` for `WouldBlock`.
fn polled<T>(r: io::Result<T>) -> Poll<io::Result<T>> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        r => Poll::Ready(r),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream<S> {
    /// Reads TLS records from the socket and processes them: bytes read
    /// (0: the socket closed). A record rustls refuses is an error, after
    /// the alert that says so is sent.
    fn poll_read_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return Poll::Ready(Ok(0));
        };
        let n = match polled(tls.read_tls(&mut Polled {
            io: &mut self.io,
            cx,
        })) {
            Poll::Ready(r) => r?,
            Poll::Pending => return Poll::Pending,
        };
        if n == 0 {
            self.eof = true;
        }
        if let Err(e) = tls.process_new_packets() {
            // The alert, if it can go at once.
            let _ = tls.write_tls(&mut Polled {
                io: &mut self.io,
                cx,
            });
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
        }
        Poll::Ready(Ok(n))
    }

    /// Writes what TLS has to send until it is all written (`Ready`) or
    /// the socket takes no more for now (`Pending`).
    fn poll_write_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return Poll::Ready(Ok(()));
        };
        while tls.wants_write() {
            match polled(tls.write_tls(&mut Polled {
                io: &mut self.io,
                cx,
            })) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Drives the handshake to its end.
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            std::task::ready!(self.poll_write_tls(cx))?;
            let handshaking = self.tls.as_deref().is_some_and(|t| t.is_handshaking());
            if !handshaking {
                return Pin::new(&mut self.io).poll_flush(cx);
            }
            if std::task::ready!(self.poll_read_tls(cx))? == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                )));
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    // PERFORMANCE_CRITICAL_PATH: every read of a shard's lattice connection.
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            let Some(tls) = this.tls.as_deref_mut() else {
                return Pin::new(&mut this.io).poll_read(cx, buf);
            };
            match tls.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return Poll::Ready(r),
            }
            if this.eof {
                // rustls said nothing of a socket closed without
                // close_notify: it is an end all the same.
                return Poll::Ready(Ok(0));
            }
            // Records the server's may need answered (a key update).
            if let Poll::Ready(Err(e)) = this.poll_write_tls(cx) {
                return Poll::Ready(Err(e));
            }
            std::task::ready!(this.poll_read_tls(cx))?;
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    // PERFORMANCE_CRITICAL_PATH: every write of a shard's lattice connection.
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            let Some(tls) = this.tls.as_deref_mut() else {
                return Pin::new(&mut this.io).poll_write(cx, buf);
            };
            let n = tls.writer().write(buf)?;
            match this.poll_write_tls(cx) {
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                // Encrypted and queued: the next write or flush sends it.
                Poll::Pending if n > 0 => return Poll::Ready(Ok(n)),
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) if n > 0 || buf.is_empty() => return Poll::Ready(Ok(n)),
                Poll::Ready(Ok(())) => {}
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(tls) = this.tls.as_deref_mut() {
            tls.writer().flush()?;
            std::task::ready!(this.poll_write_tls(cx))?;
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(tls) = this.tls.as_deref_mut() {
            if !tls.is_handshaking() {
                tls.send_close_notify();
            }
            std::task::ready!(this.poll_write_tls(cx))?;
        }
        Pin::new(&mut this.io).poll_close(cx)
    }
}
