//! Command-line parsing for `netio-traffic`. Hand-rolled to keep the crate's
//! dependencies at libc and serde_json.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::net::Endpoint;
use crate::unix::UnixAddr;

pub const USAGE: &str = "\
usage:
  netio-traffic server --scenario NAME --listen ADDR [OPTIONS]
  netio-traffic client --scenario NAME --connect ADDR [OPTIONS]
  netio-traffic take --hand-to PATH [--hand-by scm|getfd] [--take-as server|client] [OPTIONS]

ADDR is a loopback address and port, or unix:PATH, a Unix socket (stream,
or seqpacket with --socket-type seqpacket) for the scenarios bulk, waitall,
peek, sendfile, splice, splice-echo, short, pingpong, threaded, forking,
paced and scm; its peer has no address (0.0.0.0 in \"peers\").

The server prints {\"port\":N} ({\"port\":0,\"path\":PATH} on a Unix
socket) once it listens, then one JSON line with its
ground truth when done; the client prints only the ground-truth line:
  {\"role\",\"scenario\",\"pid\",\"comm\",\"sent\",\"received\",
   \"per_pid\":{\"PID\":{\"sent\",\"received\"}},\"connections\",\"peers\",\"extra\"}

scenarios (the client and server of a run must use the same one):
  bulk         client sends --size, server reads to EOF then sends --size
  waitall      client trickles --size in --chunk writes every --pause-ms;
               server reads it with a single recv(MSG_WAITALL), replies --reply
  peek         like bulk, but the server MSG_PEEKs every chunk before reading it
               and replies --reply
  sendfile     server sendfile()s a --size file (created in --dir)
  splice       server splice()s the client's --size bytes socket->pipe->/dev/null
               and replies --reply
  splice-echo  server splice()s socket->pipe->socket, echoing --size bytes
  short        --count sequential connections: --request bytes up, --reply down
  pingpong     one connection, --count exchanges in turn: --request bytes up,
               then --reply bytes down (a fixed-count loopback ping-pong)
  threaded     --count concurrent connections, one server thread each, bulk --size
  forking      --count concurrent connections, one forked server child each,
               bulk --size; children rename themselves to --child-name, or
               re-exec --reexec PATH; per-child bytes appear in per_pid
  pid-reuse    pingpong's exchanges on one connection, but the server
               serves each in a child it forks, which exits after it; every
               child after the first is made to reuse the first's PID (by
               writing /proc/sys/kernel/ns_last_pid; root) before it touches
               the socket, so one socket outlives a process and is used again
               by another with its PID; extra.children lists each child's
               bytes in order
  paced        client sends at the rates of --phases (a steady, known rate
               for threshold tests); the server echoes every byte back as it
               arrives, serving its --count connections concurrently
  zombie       bulk on one connection, served by a child the server forks,
               which then stays a zombie for --zombie-ms before the server
               reaps it; extra.zombie_pid is its PID, extra.zombie_state the
               state /proc showed for it at the end of that time (Z)
  leader-exit  bulk, --count connections in turn, served by a worker thread
               after the main thread has exited (the thread-group leader is a
               zombie while the process runs on)
  escape       bulk on one connection, served by a worker that leaves the
               server's lineage: first the server forks --paused children
               that wait to be killed, then a child that setsid()s and forks
               the worker, which re-execs --reexec PATH (another name) and
               serves the connection; the server kills the paused children
               once the worker is started; per_pid has the worker's bytes
  hand-over    the server accepts one connection (the client connects), moves
               --parent-bytes on it itself (server: reads them and sends them
               back; client: sends them), then hands the socket to the `take`
               process listening at --hand-to (--hand-by scm: SCM_RIGHTS;
               getfd: the taker takes it with pidfd_getfd) and closes its
               copy once taken; with --uid it runs as UID. The taker does the
               rest of a bulk exchange on it (--take-as server: reads to EOF,
               sends --size; client: sends --size, reads to EOF) and reports
               its own bytes. The hand-over client's peer is a bulk server
  scm          (unix:PATH only) one connection, --count exchanges: the client
               sends --request bytes with a descriptor (/dev/null) in
               SCM_RIGHTS, the server receives them with recvmsg, closes the
               descriptor and replies --reply; only payload is counted;
               extra.fds_received says how many descriptors came

options:
  --size BYTES          payload (per connection where there are several)
  --count N             connections (short, threaded, forking); exchanges
                        (pingpong, pid-reuse)
  --parallel N          client (threaded, forking, bulk and the like): at most
                        N connections at once, each thread taking the next
                        (default: all --count at once)
  --sources N           client: connection i comes from 127.0.0.(1 + i % N),
                        N at most 254 (IPv4 loopback servers only)
  --chunk BYTES         client write size (waitall; default 1000)
  --pause-ms MS         pause between client writes (waitall; default 2)
  --request BYTES       request size (short, pingpong, pid-reuse; default 100)
  --reply BYTES         server reply size (waitall, peek, splice, short,
                        pingpong, pid-reuse)
  --child-name NAME     forking: comm set with prctl(PR_SET_NAME) in each child;
                        \\xHH is the byte HH (a name need not be UTF-8)
  --reexec PATH         forking: each child execs PATH instead of renaming
  --parent-bytes BYTES  forking: before each fork the parent itself reads
                        BYTES of the upload and sends BYTES back on the
                        connection, so parent and child share the socket
                        (give the client the same option)
  --open-ms MS          pingpong client: keep the connection open MS after
                        the exchanges before closing it
  --then-connect ADDR   short client (--count 1): after the exchange, close
                        the connection cleanly, dissolve it (connect
                        AF_UNSPEC) and connect the same socket to ADDR (IPv4)
                        for a second exchange
  --from ADDR           short client: connection i is made from the IPv4
                        loopback address ADDR + i (many clients, one process)
  --dir DIR             sendfile: directory for the source file (default TMPDIR)
  --phases RATE:MS,...  paced: send RATE bytes per second for MS milliseconds,
                        then the next phase (e.g. 256k:2000,2m:8000)
  --uid UID             forking, zombie: each child drops to UID (and its
                        group to UID) before its work or exec; client with
                        --take-pid: the process on that PID runs as UID
  --paused N            escape: paused children forked first (default 4200)
  --zombie-ms MS        zombie: how long the child stays a zombie (default 3000)
  --take-pid PID        client: run the scenario in a child forked onto PID
                        (by writing /proc/sys/kernel/ns_last_pid; root), once
                        that PID is free; its report is the run's
  --hand-to PATH        hand-over, take: the taker's Unix socket
  --hand-by scm|getfd   hand-over: how the socket is handed (default scm)
  --take-as ROLE        take: server (default) or client half of bulk
  --socket-type TYPE    unix:PATH: stream (default) or seqpacket
  --hold-ms MS          stay alive until MS after start before exiting
  --timeout-secs S      socket and accept timeout (default 30)
  --deadline-secs S     SIGALRM kills the process after S seconds (default 120)
BYTES accepts a k or m suffix (1024-based).";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Bulk,
    WaitAll,
    Peek,
    Sendfile,
    Splice,
    SpliceEcho,
    Short,
    PingPong,
    Threaded,
    Forking,
    PidReuse,
    Paced,
    Zombie,
    LeaderExit,
    Escape,
    HandOver,
    Scm,
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "bulk" => Self::Bulk,
            "waitall" => Self::WaitAll,
            "peek" => Self::Peek,
            "sendfile" => Self::Sendfile,
            "splice" => Self::Splice,
            "splice-echo" => Self::SpliceEcho,
            "short" => Self::Short,
            "pingpong" => Self::PingPong,
            "threaded" => Self::Threaded,
            "forking" => Self::Forking,
            "pid-reuse" => Self::PidReuse,
            "paced" => Self::Paced,
            "zombie" => Self::Zombie,
            "leader-exit" => Self::LeaderExit,
            "escape" => Self::Escape,
            "hand-over" => Self::HandOver,
            "scm" => Self::Scm,
            other => return Err(format!("unknown scenario {other:?}")),
        })
    }
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Self::Bulk => "bulk",
            Self::WaitAll => "waitall",
            Self::Peek => "peek",
            Self::Sendfile => "sendfile",
            Self::Splice => "splice",
            Self::SpliceEcho => "splice-echo",
            Self::Short => "short",
            Self::PingPong => "pingpong",
            Self::Threaded => "threaded",
            Self::Forking => "forking",
            Self::PidReuse => "pid-reuse",
            Self::Paced => "paced",
            Self::Zombie => "zombie",
            Self::LeaderExit => "leader-exit",
            Self::Escape => "escape",
            Self::HandOver => "hand-over",
            Self::Scm => "scm",
        }
    }

    /// Whether it runs on a Unix socket: those whose work is only on the
    /// connection, not on TCP addresses or a process's identity.
    fn on_unix(self) -> bool {
        matches!(
            self,
            Self::Bulk
                | Self::WaitAll
                | Self::Peek
                | Self::Sendfile
                | Self::Splice
                | Self::SpliceEcho
                | Self::Short
                | Self::PingPong
                | Self::Threaded
                | Self::Forking
                | Self::Paced
                | Self::Scm
        )
    }

    fn default_size(self) -> u64 {
        match self {
            Self::WaitAll => 200_000,
            Self::Threaded | Self::Forking => 256 * 1024,
            Self::Short | Self::PingPong | Self::PidReuse | Self::Scm => 0,
            _ => 1024 * 1024,
        }
    }

    fn default_count(self) -> u64 {
        match self {
            Self::Short => 1000,
            Self::PingPong => 10_000,
            Self::Scm => 100,
            Self::PidReuse => 3,
            Self::Threaded | Self::Forking => 20,
            _ => 1,
        }
    }

    fn default_reply(self) -> u64 {
        match self {
            Self::WaitAll => 1000,
            Self::Peek | Self::Splice => 4096,
            Self::Short => 400,
            Self::PingPong | Self::PidReuse | Self::Scm => 100,
            _ => 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
    /// Internal: a re-exec'd forking-server child serving an inherited fd.
    ConnChild,
    /// The process a hand-over gives its socket to.
    Take,
}

/// How a hand-over gives its socket away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandBy {
    Scm,
    Getfd,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub role: Role,
    pub scenario: Scenario,
    pub addr: Option<SocketAddr>,
    /// --listen/--connect unix:PATH, instead of `addr`.
    pub unix: Option<UnixAddr>,
    pub size: u64,
    pub count: u64,
    /// client: connections at once (None: all of --count).
    pub parallel: Option<u64>,
    /// client: source addresses 127.0.0.1 to 127.0.0.N in turn.
    pub sources: Option<u8>,
    pub chunk: usize,
    pub pause: Duration,
    pub request: u64,
    pub reply: u64,
    /// paced: (bytes per second, how long), in order.
    pub phases: Vec<(u64, Duration)>,
    /// forking: the children's comm, as bytes.
    pub child_name: Option<Vec<u8>>,
    pub reexec: Option<PathBuf>,
    pub parent_bytes: u64,
    pub open: Duration,
    pub then_connect: Option<std::net::SocketAddrV4>,
    pub from: Option<std::net::Ipv4Addr>,
    pub uid: Option<u32>,
    pub zombie: Duration,
    pub paused: u64,
    pub take_pid: Option<u32>,
    pub dir: Option<PathBuf>,
    pub hold: Duration,
    pub timeout: Duration,
    pub deadline_secs: u32,
    pub fd: Option<i32>,
    pub report_fd: Option<i32>,
    pub hand_to: Option<PathBuf>,
    pub hand_by: HandBy,
    pub take_as_client: bool,
}

fn bytes(s: &str) -> Result<u64, String> {
    let lower = s.to_ascii_lowercase();
    let (digits, mult) = if let Some(d) = lower.strip_suffix('k') {
        (d, 1024)
    } else if let Some(d) = lower.strip_suffix('m') {
        (d, 1024 * 1024)
    } else {
        (lower.as_str(), 1)
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?} is not a byte count"))
}

/// `RATE:MS,RATE:MS...`: bytes per second (k/m suffix) and milliseconds.
fn phases(s: &str) -> Result<Vec<(u64, Duration)>, String> {
    s.split(',')
        .map(|phase| {
            let (rate, ms) = phase
                .split_once(':')
                .ok_or_else(|| format!("--phases: {phase:?} is not RATE:MS"))?;
            Ok((bytes(rate)?, Duration::from_millis(number("phases", ms)?)))
        })
        .collect()
}

/// A name given on the command line, where `\xHH` stands for the byte HH
/// (arguments reach the program as UTF-8, comms need not be).
fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if let Some(hex) = tail.strip_prefix(b"x").filter(|_| b == b'\\') {
            let byte = hex
                .get(..2)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("{s:?}: \\x needs two hex digits"))?;
            out.push(byte);
            rest = &hex[2..];
        } else {
            out.push(b);
            rest = tail;
        }
    }
    Ok(out)
}

impl Options {
    /// Where the server listens or the client connects.
    pub fn endpoint(&self) -> Endpoint {
        match (&self.unix, self.addr) {
            (Some(u), _) => Endpoint::Unix(u.clone()),
            (None, Some(a)) => Endpoint::Tcp(a),
            (None, None) => unreachable!("checked by the parser"),
        }
    }

    /// A Unix socket takes the scenarios that work on it, without the
    /// options of TCP addresses; --socket-type is for it alone.
    fn check_unix(&mut self, seqpacket: Option<bool>) -> Result<(), String> {
        let Some(u) = &mut self.unix else {
            if seqpacket.is_some() {
                return Err("--socket-type is for a unix:PATH address".into());
            }
            if self.scenario == Scenario::Scm && matches!(self.role, Role::Server | Role::Client) {
                return Err("the scm scenario needs a unix:PATH address".into());
            }
            return Ok(());
        };
        u.seqpacket = seqpacket.unwrap_or(false);
        if !self.scenario.on_unix() {
            return Err(format!(
                "the {} scenario does not run on a Unix socket",
                self.scenario.name()
            ));
        }
        if self.sources.is_some() || self.from.is_some() || self.then_connect.is_some() {
            return Err("--sources, --from and --then-connect need a TCP address".into());
        }
        if self.take_pid.is_some() {
            return Err("--take-pid needs a TCP address".into());
        }
        Ok(())
    }
}

fn number<T: FromStr>(key: &str, s: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("--{key}: {s:?} is not a valid number"))
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let (role, rest) = match args.split_first() {
            Some((cmd, rest)) => (
                match cmd.as_str() {
                    "server" => Role::Server,
                    "client" => Role::Client,
                    "conn-child" => Role::ConnChild,
                    "take" => Role::Take,
                    other => return Err(format!("unknown command {other:?}")),
                },
                rest,
            ),
            None => return Err("missing command".into()),
        };
        let mut pairs = Vec::new();
        let mut it = rest.iter();
        while let Some(flag) = it.next() {
            let key = flag
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {flag:?}"))?;
            let value = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
            pairs.push((key.to_owned(), value.clone()));
        }
        let scenario: Scenario = pairs
            .iter()
            .find(|(k, _)| k == "scenario")
            .map(|(_, v)| v.parse())
            .transpose()?
            .unwrap_or(Scenario::Bulk);
        let mut o = Options {
            role,
            scenario,
            addr: None,
            unix: None,
            size: scenario.default_size(),
            count: scenario.default_count(),
            parallel: None,
            sources: None,
            chunk: 1000,
            pause: Duration::from_millis(2),
            request: 100,
            reply: scenario.default_reply(),
            phases: Vec::new(),
            child_name: None,
            reexec: None,
            parent_bytes: 0,
            open: Duration::ZERO,
            then_connect: None,
            from: None,
            uid: None,
            zombie: Duration::from_secs(3),
            paused: 4200,
            take_pid: None,
            dir: None,
            hold: Duration::ZERO,
            timeout: Duration::from_secs(30),
            deadline_secs: 120,
            fd: None,
            report_fd: None,
            hand_to: None,
            hand_by: HandBy::Scm,
            take_as_client: false,
        };
        let mut seqpacket = None;
        for (key, v) in &pairs {
            match key.as_str() {
                "scenario" => {}
                "listen" | "connect" if v.starts_with("unix:") => {
                    o.unix = Some(UnixAddr {
                        path: PathBuf::from(&v["unix:".len()..]),
                        seqpacket: false,
                    })
                }
                "socket-type" => {
                    seqpacket = Some(match v.as_str() {
                        "stream" => false,
                        "seqpacket" => true,
                        _ => {
                            return Err(format!("--socket-type: {v:?} is not stream or seqpacket"))
                        }
                    })
                }
                "listen" if role == Role::Server => {
                    o.addr = Some(
                        v.parse()
                            .map_err(|_| format!("--listen: bad address {v:?}"))?,
                    )
                }
                "connect" if role == Role::Client => {
                    o.addr = Some(
                        v.parse()
                            .map_err(|_| format!("--connect: bad address {v:?}"))?,
                    )
                }
                "size" => o.size = bytes(v)?,
                "count" => o.count = number(key, v)?,
                "parallel" if role == Role::Client => o.parallel = Some(number(key, v)?),
                "sources" if role == Role::Client => o.sources = Some(number(key, v)?),
                "chunk" => o.chunk = bytes(v)? as usize,
                "pause-ms" => o.pause = Duration::from_millis(number(key, v)?),
                "request" => o.request = bytes(v)?,
                "reply" => o.reply = bytes(v)?,
                "phases" => o.phases = phases(v)?,
                "child-name" => o.child_name = Some(unescape(v)?),
                "reexec" => o.reexec = Some(PathBuf::from(v)),
                "parent-bytes" => o.parent_bytes = bytes(v)?,
                "open-ms" => o.open = Duration::from_millis(number(key, v)?),
                "then-connect" if role == Role::Client => {
                    o.then_connect = Some(
                        v.parse()
                            .map_err(|_| format!("--then-connect: bad IPv4 address {v:?}"))?,
                    )
                }
                "from" if role == Role::Client => {
                    o.from = Some(
                        v.parse()
                            .map_err(|_| format!("--from: bad IPv4 address {v:?}"))?,
                    )
                }
                "uid" => o.uid = Some(number(key, v)?),
                "paused" => o.paused = number(key, v)?,
                "zombie-ms" => o.zombie = Duration::from_millis(number(key, v)?),
                "take-pid" if role == Role::Client => o.take_pid = Some(number(key, v)?),
                "dir" => o.dir = Some(PathBuf::from(v)),
                "hold-ms" => o.hold = Duration::from_millis(number(key, v)?),
                "timeout-secs" => o.timeout = Duration::from_secs(number(key, v)?),
                "deadline-secs" => o.deadline_secs = number(key, v)?,
                "fd" if role == Role::ConnChild => o.fd = Some(number(key, v)?),
                "report-fd" if role == Role::ConnChild => o.report_fd = Some(number(key, v)?),
                "hand-to" => o.hand_to = Some(PathBuf::from(v)),
                "hand-by" => {
                    o.hand_by = match v.as_str() {
                        "scm" => HandBy::Scm,
                        "getfd" => HandBy::Getfd,
                        _ => return Err(format!("--hand-by: {v:?} is not scm or getfd")),
                    }
                }
                "take-as" if role == Role::Take => {
                    o.take_as_client = match v.as_str() {
                        "server" => false,
                        "client" => true,
                        _ => return Err(format!("--take-as: {v:?} is not server or client")),
                    }
                }
                _ => return Err(format!("unknown option --{key}")),
            }
        }
        let listens = o.addr.is_some() || o.unix.is_some();
        match role {
            Role::Server if !listens => return Err("server needs --listen ADDR".into()),
            Role::Client if !listens => return Err("client needs --connect ADDR".into()),
            Role::ConnChild if o.fd.is_none() || o.report_fd.is_none() => {
                return Err("conn-child needs --fd and --report-fd".into())
            }
            _ => {}
        }
        if o.count == 0 {
            return Err("--count must be at least 1".into());
        }
        o.check_unix(seqpacket)?;
        if o.parallel == Some(0) || o.sources.is_some_and(|n| n == 0 || n > 254) {
            return Err("--parallel must be at least 1, --sources 1 to 254".into());
        }
        if o.sources.is_some() && !o.addr.is_some_and(|a| a.ip().is_loopback() && a.is_ipv4()) {
            return Err("--sources needs an IPv4 loopback --connect address".into());
        }
        if o.child_name.is_some() && o.reexec.is_some() {
            return Err("--child-name and --reexec are alternatives".into());
        }
        if o.then_connect.is_some() && (o.scenario != Scenario::Short || o.count != 1) {
            return Err("--then-connect works with the short scenario and --count 1".into());
        }
        if o.from.is_some() && (o.scenario != Scenario::Short || o.then_connect.is_some()) {
            return Err("--from works with the short scenario, without --then-connect".into());
        }
        if o.parent_bytes > o.size {
            return Err("--parent-bytes cannot exceed --size".into());
        }
        if o.scenario == Scenario::Escape && o.role == Role::Server && o.reexec.is_none() {
            return Err("the escape server needs --reexec PATH".into());
        }
        if o.parent_bytes > 0 && o.reexec.is_some() {
            return Err("--parent-bytes works with renaming children, not --reexec".into());
        }
        if o.scenario == Scenario::Paced && o.role == Role::Client && o.phases.is_empty() {
            return Err("the paced client needs --phases RATE:MS,...".into());
        }
        if o.take_pid.is_some_and(|p| p < 2) {
            return Err("--take-pid needs a PID above 1".into());
        }
        if o.scenario == Scenario::WaitAll && o.size > i32::MAX as u64 {
            return Err("waitall --size must fit one recv()".into());
        }
        Ok(o)
    }
}
