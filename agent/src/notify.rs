//! The service manager's notify protocol (sd_notify(3)), without libsystemd:
//! one datagram per state change to `$NOTIFY_SOCKET`, and the watchdog
//! keep-alive every half of `$WATCHDOG_USEC`, sent from the sampling loop
//! so that a stuck loop is what the watchdog sees.
//!
//! Nothing happens when netio is not started by a service manager (no
//! `$NOTIFY_SOCKET`). A send never waits, and a failed one is reported
//! once on stderr and never stops the agent: counting matters more than
//! telling systemd.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
    next_watchdog: Option<Instant>,
    complained: bool,
}

impl Notifier {
    /// From the environment the service manager sets.
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let addr = match address(path.as_encoded_bytes()) {
                Ok(a) => a,
                Err(e) => {
                    tell!(
                        "netio: NOTIFY_SOCKET={} is not usable ({e}): not notifying the service manager",
                        path.to_string_lossy()
                    );
                    return None;
                }
            };
            // Non-blocking: a manager slow to read its socket must not
            // stall the loop that feeds the watchdog.
            match UnixDatagram::unbound().and_then(|s| s.set_nonblocking(true).map(|()| s)) {
                Ok(s) => Some((s, addr)),
                Err(e) => {
                    tell!("netio: cannot open a socket to notify the service manager: {e}");
                    None
                }
            }
        });
        let watchdog = watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        Notifier {
            socket,
            watchdog,
            next_watchdog: None,
            complained: false,
        }
    }

    /// Sends `state` (newline-separated `KEY=value` assignments).
    pub fn notify(&mut self, state: &str) {
        let Some((sock, addr)) = &self.socket else {
            return;
        };
        if let Err(e) = sock.send_to_addr(state.as_bytes(), addr) {
            if !self.complained {
                self.complained = true;
                tell!("netio: cannot notify the service manager ({e}); going on without");
            }
        }
    }

    /// Probes attached, first records written: the service is up.
    pub fn ready(&mut self, status: &str) {
        self.notify(&format!("READY=1\nSTATUS={status}"));
        self.watchdog_sent(Instant::now());
    }

    pub fn reloading(&mut self) {
        self.notify(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading the configuration",
            monotonic_usec()
        ));
    }

    pub fn reloaded(&mut self, status: &str) {
        self.notify(&format!("READY=1\nSTATUS={status}"));
    }

    pub fn stopping(&mut self) {
        self.notify("STOPPING=1\nSTATUS=writing the last interval and stopping");
    }

    /// When the sampling loop must wake next to keep the watchdog fed.
    pub fn watchdog_due(&self) -> Option<Instant> {
        self.next_watchdog
    }

    /// Sends WATCHDOG=1 if it is due at `now`.
    pub fn keep_alive(&mut self, now: Instant) {
        if self.next_watchdog.is_some_and(|due| now >= due) {
            self.notify("WATCHDOG=1");
            self.watchdog_sent(now);
        }
    }

    fn watchdog_sent(&mut self, now: Instant) {
        self.next_watchdog = self.watchdog.map(|w| now + w / 2);
    }
}

/// `$NOTIFY_SOCKET` as an address: a path, or `@name` for the abstract
/// namespace.
fn address(raw: &[u8]) -> io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    match raw {
        [] => Err(io::Error::new(io::ErrorKind::InvalidInput, "empty")),
        [b'@', name @ ..] => SocketAddr::from_abstract_name(name),
        [b'/', ..] => SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(raw)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "neither an absolute path nor @abstract",
        )),
    }
}

/// The watchdog period, when it is meant for this process: `WATCHDOG_PID`
/// unset or ours, `WATCHDOG_USEC` a positive number of microseconds.
fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok() != Some(me) {
            return None;
        }
    }
    match usec?.trim().parse::<u64>() {
        Ok(0) | Err(_) => None,
        Ok(us) => Some(Duration::from_micros(us)),
    }
}

fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_only_for_this_process_and_positive_periods() {
        let s = Duration::from_secs;
        assert_eq!(watchdog_interval(Some("30000000"), None, 7), Some(s(30)));
        assert_eq!(
            watchdog_interval(Some("30000000"), Some("7"), 7),
            Some(s(30))
        );
        assert_eq!(watchdog_interval(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 7), None);
        assert_eq!(watchdog_interval(None, Some("7"), 7), None);
    }

    #[test]
    fn notify_socket_addresses() {
        assert!(address(b"/run/systemd/notify")
            .unwrap()
            .as_pathname()
            .is_some());
        use std::os::linux::net::SocketAddrExt;
        assert_eq!(
            address(b"@netio-test").unwrap().as_abstract_name(),
            Some(&b"netio-test"[..])
        );
        assert!(address(b"relative").is_err());
        assert!(address(b"").is_err());
    }
}
