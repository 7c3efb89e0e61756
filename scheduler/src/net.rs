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
        Ok(Stream { inner: s })
    }
}

/// A connected TCP stream on the current shard.
pub struct Stream {
    inner: glommio::net::TcpStream,
}

impl hyper::rt::Read for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // SAFETY: `as_mut` exposes the unfilled part of hyper's buffer as
        // possibly uninitialized bytes. We zero it before handing it to
        // `poll_read` as a `&mut [u8]`, and advance only by the count the
        // read reports, which never exceeds the slice's length.
        let n = unsafe {
            let raw = buf.as_mut();
            for b in raw.iter_mut() {
                b.write(0);
            }
            let slice = &mut *(raw as *mut [std::mem::MaybeUninit<u8>] as *mut [u8]);
            match Pin::new(&mut self.inner).poll_read(cx, slice) {
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        };
        // SAFETY: `n` bytes were initialized by the read above.
        unsafe { buf.advance(n) };
        Poll::Ready(Ok(()))
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
