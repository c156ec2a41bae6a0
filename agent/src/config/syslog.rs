//! `[[syslog]]` destinations: how each is reached, its facility and
//! app name, and the queue that keeps a slow collector from delaying netio.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How a syslog destination is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// RFC 3164-style datagrams to a local unix socket (/dev/log).
    #[default]
    Local,
    /// RFC 5424, one message per datagram (RFC 5426).
    Udp,
    /// RFC 5424 over TCP, octet-counting framing (RFC 6587).
    Tcp,
    /// `tcp` inside TLS (RFC 5425).
    Tls,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Local => "local",
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

/// The syslog facilities, by their usual names, with their codes.
pub const FACILITIES: [(&str, u8); 20] = [
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// `facility`: netio is a system daemon.
pub const DEFAULT_FACILITY: &str = "daemon";
/// `app_name`: the same name as the records' own `SYSLOG_IDENTIFIER`.
pub const DEFAULT_APP_NAME: &str = "netio";
/// `queue`: records held while the destination is down or slow.
pub const DEFAULT_QUEUE: u32 = 10_000;
/// `ca_file`, `client_cert`, `client_key` larger than this are refused: a
/// system's whole CA bundle is a few hundred kilobytes.
pub const MAX_TLS_FILE_BYTES: u64 = 4 << 20;

/// One `[[syslog]]` destination.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Syslog {
    #[serde(default)]
    pub transport: Transport,
    /// A unix socket path (local) or host:port (udp, tcp, tls).
    pub address: String,
    #[serde(default = "default_facility")]
    pub facility: String,
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// Records held while the destination is down or slow; past it, new
    /// records are dropped and counted.
    #[serde(default = "default_queue")]
    pub queue: u32,
    /// tls: the CA certificates (PEM) the collector's certificate must
    /// chain to; default the system's bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// tls: a client certificate chain (PEM) for collectors that ask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// tls: the client certificate's private key (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
}

impl Syslog {
    /// The facility's code; validation admits only names in `FACILITIES`.
    pub fn facility_code(&self) -> u8 {
        FACILITIES
            .iter()
            .find(|(n, _)| *n == self.facility)
            .map(|(_, c)| *c)
            .unwrap_or(3)
    }

    /// `tcp 127.0.0.1:514`: how notes and records name the destination.
    pub fn describe(&self) -> String {
        format!("{} {}", self.transport.name(), self.address)
    }

    /// The host and port of a remote address: `host:port` or `[v6]:port`.
    pub fn host_port(&self) -> Option<(&str, u16)> {
        let (host, port) = self.address.rsplit_once(':')?;
        let host = match host.strip_prefix('[') {
            Some(h) => h.strip_suffix(']')?,
            None if host.contains(':') => return None,
            None => host,
        };
        let port: u16 = port.parse().ok()?;
        (!host.is_empty() && port != 0).then_some((host, port))
    }
}

// serde's `default` takes functions, not constants.
fn default_facility() -> String {
    DEFAULT_FACILITY.into()
}
fn default_app_name() -> String {
    DEFAULT_APP_NAME.into()
}
fn default_queue() -> u32 {
    DEFAULT_QUEUE
}
