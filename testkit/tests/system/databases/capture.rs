//! A packet capture on `lo` that sums TCP payload bytes per direction for
//! one server port, as an independent witness of what crossed the wire.
//!
//! An `AF_PACKET` socket bound to `lo` with a classic BPF filter (IPv4, TCP,
//! the port, not the outgoing copy of each looped-back packet), reading
//! only the headers of each packet. Payload is the IP total length minus
//! the IP and TCP headers: with GSO on `lo` one captured segment may carry
//! up to 64 KiB, and its IP total length still says how much. Where the
//! total length is 0 (BIG TCP) the length the kernel reports for the whole
//! frame is used instead. Bytes are counted once per sequence number, so
//! retransmits are not counted twice, and every flow's byte ranges must be
//! contiguous from its SYN: a hole means a packet was missed, which fails
//! the test just like a non-zero drop counter (`PACKET_STATISTICS`).

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

// From linux/if_packet.h.
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_AUXDATA: libc::c_int = 8;
const PACKET_OUTGOING: u32 = 4;

/// `struct tpacket_auxdata`: `tp_len` is the packet's length before the
/// filter cut it to the snapshot length.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct AuxData {
    status: u32,
    len: u32,
    snaplen: u32,
    mac: u16,
    net: u16,
    vlan_tci: u16,
    vlan_tpid: u16,
}

/// `struct tpacket_stats`.
#[repr(C)]
#[derive(Default)]
struct Stats {
    packets: u32,
    drops: u32,
}

/// Bytes of each packet the filter passes up: Ethernet (14) plus the
/// largest IPv4 (60) and TCP (60) headers, rounded up.
const SNAPLEN: u32 = 256;

const ETH_HLEN: usize = 14;
const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;

/// What the capture saw, for one server port.
#[derive(Debug, Default)]
pub struct Summary {
    /// Unique TCP payload bytes from clients to the server port.
    pub to_server: u64,
    /// Unique TCP payload bytes from the server port to clients.
    pub from_server: u64,
    /// Packets the filter passed (all directions, with and without payload).
    pub packets: u64,
    /// Packets the kernel dropped because the capture socket was full.
    pub drops: u64,
    /// Connections (client ports) seen.
    pub connections: usize,
    /// Per client port: unique payload bytes (to the server, from it).
    pub per_client: BTreeMap<u16, (u64, u64)>,
    /// Payload bytes seen more than once (retransmits), not counted twice.
    pub duplicate_bytes: u64,
    /// The largest payload of one captured segment (above the MTU: GSO).
    pub largest_segment: u64,
    /// Everything that means the capture cannot be trusted to be complete:
    /// empty when it can.
    pub problems: Vec<String>,
}

/// One direction of one connection: the byte ranges seen, relative to the
/// first payload byte (the SYN's sequence number plus one).
#[derive(Default)]
struct Stream {
    /// Sequence number of the first payload byte, once the SYN was seen.
    base: Option<u32>,
    /// Merged, sorted half-open ranges of payload seen.
    ranges: Vec<(u64, u64)>,
    /// Relative sequence number of the FIN, if one was seen.
    fin: Option<u64>,
    segments_before_syn: u64,
    duplicate: u64,
    largest: u64,
}

impl Stream {
    fn add(&mut self, start: u64, end: u64) {
        if start == end {
            return;
        }
        // Fast path: in order, right after the last range.
        if let Some(last) = self.ranges.last_mut() {
            if start == last.1 {
                last.1 = end;
                return;
            }
        }
        let covered: u64 = self
            .ranges
            .iter()
            .map(|&(s, e)| e.min(end).saturating_sub(s.max(start)))
            .sum();
        self.duplicate += covered;
        self.ranges.push((start, end));
        self.ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.ranges.len());
        for &(s, e) in &self.ranges {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.ranges = merged;
    }

    fn total(&self) -> u64 {
        self.ranges.iter().map(|(s, e)| e - s).sum()
    }

    /// Why these ranges are not one contiguous run from the first byte to
    /// the FIN, if they are not.
    fn problem(&self) -> Option<String> {
        if self.segments_before_syn > 0 {
            return Some(format!(
                "{} segments with payload before the SYN was seen",
                self.segments_before_syn
            ));
        }
        let end = self.ranges.last().map_or(0, |r| r.1);
        if self.ranges.len() > 1 || self.ranges.first().is_some_and(|r| r.0 != 0) {
            return Some(format!("holes in the payload seen: {:?}", self.ranges));
        }
        match self.fin {
            Some(fin) if fin != end => Some(format!(
                "FIN at relative sequence {fin} but payload seen up to {end}"
            )),
            _ => None,
        }
    }
}

/// A capture running on its own thread until `finish`.
pub struct Capture {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Summary>>,
}

fn check(ret: libc::c_int, what: &str) {
    assert!(
        ret >= 0,
        "capture: {what}: {}",
        std::io::Error::last_os_error()
    );
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T, what: &str) {
    // SAFETY: value points to a live T of the size passed.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            value as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    check(ret, what);
}

/// The classic BPF program: keep IPv4 TCP packets from or to `port` that
/// are not the outgoing copy (on `lo` each packet is seen going out and
/// coming in; the incoming copy is kept), cut to `SNAPLEN` bytes.
fn filter(port: u16) -> Vec<libc::sock_filter> {
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let (ld, ldx, jmp, ret) = (libc::BPF_LD, libc::BPF_LDX, libc::BPF_JMP, libc::BPF_RET);
    let (w, h, b) = (libc::BPF_W, libc::BPF_H, libc::BPF_B);
    let (abs, ind, msh) = (libc::BPF_ABS, libc::BPF_IND, libc::BPF_MSH);
    let (jeq, k) = (libc::BPF_JEQ, libc::BPF_K);
    let pkttype = (libc::SKF_AD_OFF + libc::SKF_AD_PKTTYPE) as u32;
    let port = u32::from(port);
    vec![
        /* 0 */ stmt(ld | w | abs, pkttype),
        /* 1 */ jump(jmp | jeq | k, PACKET_OUTGOING, 10, 0), // -> 12 drop
        /* 2 */ stmt(ld | h | abs, 12), // ethertype
        /* 3 */ jump(jmp | jeq | k, 0x0800, 0, 8), // IPv4, else -> 12
        /* 4 */ stmt(ld | b | abs, 23), // IP protocol
        /* 5 */ jump(jmp | jeq | k, 6, 0, 6), // TCP, else -> 12
        /* 6 */ stmt(ldx | b | msh, ETH_HLEN as u32), // X = IP header length
        /* 7 */ stmt(ld | h | ind, ETH_HLEN as u32), // source port
        /* 8 */ jump(jmp | jeq | k, port, 2, 0), // -> 11 keep
        /* 9 */ stmt(ld | h | ind, ETH_HLEN as u32 + 2), // destination port
        /* 10 */ jump(jmp | jeq | k, port, 0, 1), // -> 11 keep, else 12
        /* 11 */ stmt(ret | k, SNAPLEN),
        /* 12 */ stmt(ret | k, 0),
    ]
}

fn loopback_index() -> libc::c_int {
    // SAFETY: a NUL-terminated name.
    let index = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
    assert!(index != 0, "capture: no interface lo");
    index as libc::c_int
}

impl Capture {
    /// Starts capturing; every packet sent after this returns is seen.
    pub fn start(port: u16) -> Self {
        // Protocol 0: the socket receives nothing until bound with a
        // protocol below, by which time the filter is in place.
        // SAFETY: plain socket call.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        check(raw, "socket(AF_PACKET)");
        // SAFETY: raw is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let program = filter(port);
        let fprog = libc::sock_fprog {
            len: program.len() as u16,
            filter: program.as_ptr() as *mut libc::sock_filter,
        };
        setsockopt(
            &fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            &fprog,
            "SO_ATTACH_FILTER",
        );
        let rcvbuf: libc::c_int = 256 << 20;
        setsockopt(
            &fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            &rcvbuf,
            "SO_RCVBUFFORCE",
        );
        let on: libc::c_int = 1;
        setsockopt(&fd, libc::SOL_PACKET, PACKET_AUXDATA, &on, "PACKET_AUXDATA");
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        setsockopt(
            &fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &timeout,
            "SO_RCVTIMEO",
        );
        // SAFETY: an all-zero sockaddr_ll is valid; the fields are set below.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        addr.sll_ifindex = loopback_index();
        // SAFETY: addr is a sockaddr_ll of the size passed.
        let ret = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        check(ret, "bind to lo");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || read_loop(fd, port, &flag));
        Self {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops once the socket's queue is empty and returns the sums.
    pub fn finish(mut self) -> Summary {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .unwrap()
            .join()
            .unwrap_or_else(|_| panic!("capture of port {} panicked", self.port))
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn read_loop(fd: OwnedFd, port: u16, stop: &AtomicBool) -> Summary {
    let mut summary = Summary::default();
    // (client port, towards the server) -> stream
    let mut streams: BTreeMap<(u16, bool), Stream> = BTreeMap::new();
    let mut buf = [0u8; SNAPLEN as usize];
    let mut control = [0u64; 16];
    loop {
        // SAFETY: zeroed sockaddr_ll and msghdr are valid; every pointer
        // set below refers to a live buffer of the length given.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = &mut from as *mut libc::sockaddr_ll as *mut libc::c_void;
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: msg describes the buffers above.
        let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, 0) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => {
                    // Queue empty: done if asked to stop.
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    continue;
                }
                _ => {
                    summary.problems.push(format!("recvmsg: {err}"));
                    break;
                }
            }
        }
        let captured = n as usize;
        let mut aux: Option<AuxData> = None;
        // SAFETY: walking the control buffer the kernel filled in.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == PACKET_AUXDATA {
                    aux = Some(std::ptr::read_unaligned(
                        libc::CMSG_DATA(c) as *const AuxData
                    ));
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        summary.packets += 1;
        if u32::from(from.sll_pkttype) == PACKET_OUTGOING {
            summary
                .problems
                .push("an outgoing packet passed the filter".into());
            continue;
        }
        let Some(aux) = aux else {
            summary
                .problems
                .push("a packet without PACKET_AUXDATA".into());
            continue;
        };
        if let Err(problem) = account(&buf[..captured], aux.len as usize, port, &mut streams) {
            summary.problems.push(problem);
        }
        if let Some(s) = streams.values().map(|s| s.ranges.len()).max() {
            // A stream with many separate ranges is a capture that lost
            // packets; stop merging early rather than going quadratic.
            if s > 10_000 {
                summary
                    .problems
                    .push("over 10,000 holes in one stream".into());
                break;
            }
        }
    }
    let mut stats = Stats::default();
    let mut len = std::mem::size_of::<Stats>() as libc::socklen_t;
    // SAFETY: stats is a tpacket_stats of the size passed.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            PACKET_STATISTICS,
            &mut stats as *mut Stats as *mut libc::c_void,
            &mut len,
        )
    };
    if ret < 0 {
        summary.problems.push(format!(
            "PACKET_STATISTICS: {}",
            std::io::Error::last_os_error()
        ));
    }
    summary.drops = u64::from(stats.drops);
    if stats.drops > 0 {
        summary
            .problems
            .push(format!("the kernel dropped {} packets", stats.drops));
    }
    for ((client, to_server), stream) in &streams {
        let per = summary.per_client.entry(*client).or_default();
        if let Some(p) = stream.problem() {
            let dir = if *to_server { "to" } else { "from" };
            summary
                .problems
                .push(format!("client port {client}, {dir} the server: {p}"));
        }
        let total = stream.total();
        if *to_server {
            summary.to_server += total;
            per.0 += total;
        } else {
            summary.from_server += total;
            per.1 += total;
        }
        summary.duplicate_bytes += stream.duplicate;
        summary.largest_segment = summary.largest_segment.max(stream.largest);
    }
    summary.connections = summary.per_client.len();
    summary
}

/// Adds one captured frame (its first bytes, `frame`; its whole length,
/// `len`) to its stream.
fn account(
    frame: &[u8],
    len: usize,
    port: u16,
    streams: &mut BTreeMap<(u16, bool), Stream>,
) -> Result<(), String> {
    let short = || format!("a {}-byte capture is too short", frame.len());
    if frame.len() < ETH_HLEN + 20 {
        return Err(short());
    }
    let ip = &frame[ETH_HLEN..];
    if ip[0] >> 4 != 4 {
        return Err(format!("IP version {} passed the filter", ip[0] >> 4));
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let frag = be16(ip, 6);
    if frag & 0x3fff != 0 {
        return Err("an IP fragment".into());
    }
    let total = match usize::from(be16(ip, 2)) {
        0 => len - ETH_HLEN, // BIG TCP: the length is in the skb only
        t if t == len - ETH_HLEN => t,
        t => return Err(format!("IP total length {t} but a {len}-byte frame on lo")),
    };
    if ip.len() < ihl + 20 {
        return Err(short());
    }
    let tcp = &ip[ihl..];
    let (sport, dport) = (be16(tcp, 0), be16(tcp, 2));
    let seq = be32(tcp, 4);
    let doff = usize::from(tcp[12] >> 4) * 4;
    let flags = tcp[13];
    let payload = total
        .checked_sub(ihl + doff)
        .ok_or_else(|| format!("headers ({ihl} + {doff}) longer than the packet ({total})"))?
        as u64;
    let key = if dport == port {
        (sport, true)
    } else if sport == port {
        (dport, false)
    } else {
        return Err(format!("ports {sport} -> {dport} passed the filter"));
    };
    let stream = streams.entry(key).or_default();
    if flags & TCP_SYN != 0 {
        stream.base = Some(seq.wrapping_add(1));
        return Ok(());
    }
    let Some(base) = stream.base else {
        if payload > 0 {
            stream.segments_before_syn += 1;
        }
        return Ok(());
    };
    let start = u64::from(seq.wrapping_sub(base));
    stream.add(start, start + payload);
    if flags & TCP_FIN != 0 {
        stream.fin = Some(start + payload);
    }
    stream.largest = stream.largest.max(payload);
    Ok(())
}
