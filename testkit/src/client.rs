//! The client side of every scenario. Usually untracked, but it is the
//! tracked process in the late-start and exit-mid-interval tests, so it
//! counts its bytes just as carefully and connects the moment it starts.

use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use crate::cli::{Options, Scenario};
use crate::net::{self, Endpoint};
use crate::tally::{
    paced_total, recv_exact, recv_to_eof, send_counted, send_paced, Report, Tally, CHUNK,
};

pub fn run(o: &Options) -> Result<Option<Report>, String> {
    let ep = o.endpoint();
    let ep = &ep;
    let tally = Tally::default();
    let tally = &tally;
    if o.scenario == Scenario::HandOver {
        return crate::handover::connect(o).map(Some);
    }
    if let (Some(second), Endpoint::Tcp(addr)) = (o.then_connect, ep) {
        reconnect_exchange(*addr, second, o, tally)?;
    } else if let (Some(from), Endpoint::Tcp(addr)) = (o.from, ep) {
        let addr = *addr;
        let SocketAddr::V4(v4) = addr else {
            return Err("--from needs an IPv4 server address".into());
        };
        for i in 0..o.count {
            let src = std::net::Ipv4Addr::from(u32::from(from) + i as u32);
            let stream = net::connect_from(SocketAddr::V4(v4), src, o.timeout)
                .map_err(|e| format!("connection {i} from {src}: {e}"))?;
            tally.connection(addr.ip());
            short_on(&stream, o, tally).map_err(|e| format!("connection {i} from {src}: {e}"))?;
        }
    } else if o.scenario == Scenario::Short {
        for i in 0..o.count {
            short_exchange(ep, o, tally).map_err(|e| format!("connection {i}: {e}"))?;
        }
    } else if matches!(o.scenario, Scenario::PingPong | Scenario::PidReuse) {
        pingpong(ep, o, tally)?;
    } else if o.scenario == Scenario::Scm {
        scm(ep, o, tally)?;
    } else {
        // --parallel threads each take the next connection until --count.
        let next = std::sync::atomic::AtomicU64::new(0);
        let next = &next;
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..o.parallel.unwrap_or(o.count).min(o.count))
                .map(|_| {
                    s.spawn(move || loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= o.count {
                            return Ok::<(), String>(());
                        }
                        stream_exchange(ep, source(o, i), o, tally)
                            .map_err(|e| format!("connection {i}: {e}"))?;
                    })
                })
                .collect();
            workers.into_iter().try_for_each(|c| {
                c.join()
                    .map_err(|_| "connection thread panicked".to_string())?
            })
        })?;
    }
    Ok(Some(Report::single("client", o.scenario.name(), tally)))
}

/// The source address of connection `i` with `--sources N`: 127.0.0.1 to
/// 127.0.0.N in turn; without it, the kernel's choice.
fn source(o: &Options, i: u64) -> Option<Ipv4Addr> {
    o.sources
        .map(|n| Ipv4Addr::new(127, 0, 0, 1 + (i % u64::from(n)) as u8))
}

/// What the client uploads per connection, and in what pieces.
fn upload(o: &Options) -> (u64, usize, Duration) {
    match o.scenario {
        Scenario::Sendfile => (0, CHUNK, Duration::ZERO),
        Scenario::WaitAll => (o.size, o.chunk, o.pause),
        _ => (o.size, CHUNK, Duration::ZERO),
    }
}

/// What the server must send back per connection; anything else means the
/// two sides disagree about the scenario.
fn expected_download(o: &Options) -> u64 {
    match o.scenario {
        Scenario::WaitAll | Scenario::Peek | Scenario::Splice | Scenario::Short => o.reply,
        // The server echoes.
        Scenario::Paced => paced_total(&o.phases),
        // The parent's echo of --parent-bytes, then the child's reply.
        Scenario::Forking => o.size + o.parent_bytes,
        _ => o.size,
    }
}

/// Uploads on a helper thread while this thread downloads, so that no
/// server (echoing or not) can deadlock on full socket buffers.
fn stream_exchange(
    ep: &Endpoint,
    from: Option<Ipv4Addr>,
    o: &Options,
    tally: &Tally,
) -> Result<(), String> {
    let stream = match (from, ep) {
        (Some(ip), Endpoint::Tcp(addr)) => net::connect_from(*addr, ip, o.timeout),
        _ => net::connect_to(ep, o.timeout),
    }
    .map_err(|e| format!("connect {ep}: {e}"))?;
    tally.connection(ep.ip());
    let (size, chunk, pause) = upload(o);
    let got = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            if o.scenario == Scenario::Paced {
                send_paced(&stream, &o.phases, tally)?;
            } else {
                send_counted(&stream, size, chunk, pause, tally)?;
            }
            stream.shutdown(Shutdown::Write)
        });
        let got = recv_to_eof(&stream, tally).map_err(|e| format!("receive: {e}"));
        let sent = writer
            .join()
            .map_err(|_| "writer thread panicked".to_string())?
            .map_err(|e| format!("send: {e}"));
        sent.and(got)
    })?;
    let want = expected_download(o);
    if got != want {
        return Err(format!(
            "received {got} bytes, the {} server sends {want}",
            o.scenario.name()
        ));
    }
    Ok(())
}

/// --count request/reply exchanges in turn on one connection, so every
/// message waits for the previous one: a fixed amount of work whose time
/// per message shows what each send and receive costs.
fn pingpong(ep: &Endpoint, o: &Options, tally: &Tally) -> Result<(), String> {
    let stream: TcpStream =
        net::connect_to(ep, o.timeout).map_err(|e| format!("connect {ep}: {e}"))?;
    tally.connection(ep.ip());
    for i in 0..o.count {
        send_counted(&stream, o.request, CHUNK, Duration::ZERO, tally)
            .map_err(|e| format!("request {i}: {e}"))?;
        recv_exact(&stream, o.reply as usize, tally).map_err(|e| format!("reply {i}: {e}"))?;
    }
    std::thread::sleep(o.open);
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| format!("shutdown: {e}"))?;
    let trailing = recv_to_eof(&stream, tally).map_err(|e| format!("wait for close: {e}"))?;
    if trailing != 0 {
        return Err(format!("the server sent {trailing} bytes past its replies"));
    }
    Ok(())
}

/// A short exchange with `first`, then the same socket, its connection
/// closed cleanly and dissolved, connected to `second` for another: one
/// socket, two peers in turn.
fn reconnect_exchange(
    first: SocketAddr,
    second: std::net::SocketAddrV4,
    o: &Options,
    tally: &Tally,
) -> Result<(), String> {
    let stream = net::connect(first, o.timeout).map_err(|e| format!("connect {first}: {e}"))?;
    tally.connection(first.ip());
    send_counted(&stream, o.request, CHUNK, Duration::ZERO, tally)
        .map_err(|e| format!("request to {first}: {e}"))?;
    recv_exact(&stream, o.reply as usize, tally).map_err(|e| format!("reply from {first}: {e}"))?;
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| format!("shutdown: {e}"))?;
    recv_to_eof(&stream, tally).map_err(|e| format!("wait for {first} to close: {e}"))?;
    crate::sys::disconnect(&stream).map_err(|e| format!("connect(AF_UNSPEC): {e}"))?;
    crate::sys::connect_v4(&stream, second).map_err(|e| format!("connect {second}: {e}"))?;
    tally.connection(std::net::IpAddr::V4(*second.ip()));
    short_on(&stream, o, tally)
}

fn short_exchange(ep: &Endpoint, o: &Options, tally: &Tally) -> Result<(), String> {
    let stream: TcpStream =
        net::connect_to(ep, o.timeout).map_err(|e| format!("connect {ep}: {e}"))?;
    tally.connection(ep.ip());
    short_on(&stream, o, tally)
}

/// --count requests, each sent with a descriptor in SCM_RIGHTS (the rest
/// of a request cut short goes without), each answered with --reply.
fn scm(ep: &Endpoint, o: &Options, tally: &Tally) -> Result<(), String> {
    let stream = net::connect_to(ep, o.timeout).map_err(|e| format!("connect {ep}: {e}"))?;
    tally.connection(ep.ip());
    let request = vec![7u8; o.request as usize];
    for i in 0..o.count {
        let n = crate::unix::send_with_fd(&stream, &request)
            .map_err(|e| format!("request {i}: {e}"))?;
        tally.add_sent(n);
        send_counted(
            &stream,
            (request.len() - n) as u64,
            CHUNK,
            Duration::ZERO,
            tally,
        )
        .map_err(|e| format!("request {i}: {e}"))?;
        recv_exact(&stream, o.reply as usize, tally).map_err(|e| format!("reply {i}: {e}"))?;
    }
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| format!("shutdown: {e}"))?;
    recv_to_eof(&stream, tally).map_err(|e| format!("wait for close: {e}"))?;
    Ok(())
}

/// The short scenario's request and reply on a connected socket.
fn short_on(stream: &TcpStream, o: &Options, tally: &Tally) -> Result<(), String> {
    send_counted(stream, o.request, CHUNK, Duration::ZERO, tally)
        .map_err(|e| format!("request: {e}"))?;
    recv_exact(stream, o.reply as usize, tally).map_err(|e| format!("reply: {e}"))?;
    Ok(())
}
