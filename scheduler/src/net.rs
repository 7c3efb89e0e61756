//! Shard-local TCP: listeners bound with `SO_REUSEPORT` (one per shard can
//! share a port) and streams that implement hyper's I/O traits.

use futures_lite::{AsyncRead, AsyncWrite};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A listening socket owned by the current shard.
pub struct Listener {
    inner: glommio::net::TcpListener,
}

impl Listener {
    /// Binds `addr` on the current shard with `SO_REUSEPORT` (every shard
    /// binds the same port and the kernel spreads connections over them) and
    /// `SO_REUSEADDR` (a restarted host binds despite its predecessor's
    /// connections in `TIME_WAIT`). Note that a port held by another process
    /// of the same user with `SO_REUSEPORT` is shared, not refused: check
    /// first with a plain bind.
    pub fn bind(addr: SocketAddr) -> io::Result<Listener> {
        use socket2::{Domain, Protocol, Socket, Type};
        use std::os::fd::{FromRawFd, IntoRawFd};
        let sk = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        sk.set_reuse_address(true)?;
        sk.set_reuse_port(true)?;
        sk.bind(&addr.into())?;
        sk.listen(crate::limits::LISTEN_BACKLOG as i32)?;
        let fd = sk.into_raw_fd();
        // SAFETY: `fd` is a TCP socket we own (taken from `sk`, which no
        // longer closes it), bound and listening, as `from_raw_fd` requires;
        // ownership passes to the listener, which closes it on drop.
        let inner = unsafe { glommio::net::TcpListener::from_raw_fd(fd) };
        Ok(Listener { inner })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr().map_err(io::Error::from)
    }

    /// Accepts one connection.
    pub async fn accept(&self) -> io::Result<Stream> {
        let s = self.inner.accept().await.map_err(io::Error::from)?;
        // Responses are small and latency matters more than packet count.
        let _ = s.set_nodelay(true);
        Ok(Stream {
            inner: s,
            scratch: vec![0; crate::limits::READ_SCRATCH].into_boxed_slice(),
        })
    }
}

/// A connected TCP stream on the current shard.
pub struct Stream {
    inner: glommio::net::TcpStream,
    scratch: Box<[u8]>,
}

impl hyper::rt::Read for Stream {
    // PERFORMANCE_CRITICAL_PATH: every read of every connection. glommio
    // reads into an initialized `&mut [u8]` while hyper offers uninitialized
    // space; reading into the connection's own (once-zeroed) scratch buffer
    // and copying what arrived costs the bytes read, where zeroing hyper's
    // buffer on every read cost its whole size.
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let want = buf.remaining().min(this.scratch.len());
        match Pin::new(&mut this.inner).poll_read(cx, &mut this.scratch[..want]) {
            Poll::Ready(Ok(n)) => {
                buf.put_slice(&this.scratch[..n]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl hyper::rt::Write for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// An outgoing TCP connection owned by the current shard
/// (`futures_lite`'s `AsyncRead` and `AsyncWrite`).
pub type Connection = glommio::net::TcpStream;

/// Connects to `addr` from the current shard, with `TCP_NODELAY` (small
/// messages, latency first).
pub async fn connect(addr: SocketAddr) -> io::Result<Connection> {
    let s = glommio::net::TcpStream::connect(addr)
        .await
        .map_err(io::Error::from)?;
    let _ = s.set_nodelay(true);
    Ok(s)
}
