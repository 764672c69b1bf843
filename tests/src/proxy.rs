//! A latency-injecting TCP proxy on 127.0.0.1, for benchmarks at real network round
//! trips and for fault tests that cut connections.
//!
//! Each direction of each connection is delayed by the configured one-way delay: a
//! chunk read at `t` is written at `t + delay`, so throughput is kept (chunks are
//! pipelined, as on a real link) while every round trip costs `2 × delay`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// A running proxy. Dropping it stops accepting and cuts every connection.
#[derive(Debug)]
pub struct LatencyProxy {
    addr: SocketAddr,
    state: Arc<State>,
    accept_task: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct State {
    target: SocketAddr,
    delay_micros: AtomicU64,
    accepted: AtomicU64,
    /// Bumped by [`LatencyProxy::cut_all`]: every live connection watches it.
    generation: watch::Sender<u64>,
    refusing: Mutex<bool>,
}

impl LatencyProxy {
    /// Starts a proxy on a free 127.0.0.1 port forwarding to `target`, adding
    /// `one_way` in each direction.
    pub async fn start(target: SocketAddr, one_way: Duration) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (generation, _) = watch::channel(0);
        let state = Arc::new(State {
            target,
            delay_micros: AtomicU64::new(one_way.as_micros() as u64),
            accepted: AtomicU64::new(0),
            generation,
            refusing: Mutex::new(false),
        });
        let accept_state = state.clone();
        let accept_task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                accept_state.accepted.fetch_add(1, Ordering::Relaxed);
                let refusing = accept_state.refusing.lock().map(|r| *r).unwrap_or(false);
                if refusing {
                    drop(client);
                    continue;
                }
                tokio::spawn(relay(client, accept_state.clone()));
            }
        });
        Ok(LatencyProxy {
            addr,
            state,
            accept_task,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Changes the one-way delay for data read from now on.
    pub fn set_delay(&self, one_way: Duration) {
        self.state
            .delay_micros
            .store(one_way.as_micros() as u64, Ordering::Relaxed);
    }

    /// Connections accepted so far (including refused ones): the number of connection
    /// attempts clients made.
    pub fn connections_accepted(&self) -> u64 {
        self.state.accepted.load(Ordering::Relaxed)
    }

    /// Cuts every open connection at once, as a dropped network link would.
    pub fn cut_all(&self) {
        self.state.generation.send_modify(|g| *g += 1);
    }

    /// While `true`, new connections are accepted and closed at once (a host that is
    /// down); they are still counted.
    pub fn refuse_new(&self, refuse: bool) {
        if let Ok(mut r) = self.state.refusing.lock() {
            *r = refuse;
        }
    }
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        self.cut_all();
    }
}

async fn relay(client: TcpStream, state: Arc<State>) {
    let Ok(server) = TcpStream::connect(state.target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let mut cut = state.generation.subscribe();
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pipe(client_read, server_write, state.clone());
    let down = pipe(server_read, client_write, state.clone());
    tokio::select! {
        _ = async { tokio::join!(up, down) } => {}
        _ = cut.changed() => {}
    }
}

/// Copies one direction, delaying each chunk by the one-way delay.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    state: Arc<State>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let delay = Duration::from_micros(state.delay_micros.load(Ordering::Relaxed));
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn relays_bytes_and_counts_connections() {
        let echo = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let target = echo.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let proxy = LatencyProxy::start(target, Duration::from_millis(5))
            .await
            .expect("proxy");
        let mut c = TcpStream::connect(proxy.addr()).await.expect("connect");
        c.write_all(b"ping").await.expect("write");
        let mut got = [0u8; 4];
        c.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"ping");
        assert_eq!(proxy.connections_accepted(), 1);
        proxy.cut_all();
        let mut rest = Vec::new();
        // After a cut the connection ends (EOF or reset), it does not hang.
        let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut rest))
            .await
            .expect("connection closed after cut");
    }
}
