//! How a syslog destination renders a record: RFC 5424 with every field but
//! `MESSAGE` as structured data, or RFC 3164 with the summary for the local
//! socket; SD-PARAM escaping and names. The message text is MESSAGE with
//! control characters escaped; SD-PARAM values keep the fields' real
//! values, escaped only as RFC 5424 asks.

use std::ffi::CStr;
use std::fmt::Write as _;
use std::io;
use std::time::SystemTime;

use crate::config::{Syslog, Transport};
use crate::record::{field, printable, Record};
use crate::sink::time::{rfc3164_local, rfc3339_utc};

/// The SD-ID of netio's structured data, under IANA's documentation number
/// since netio has no enterprise number of its own (docs/siem.md).
pub const SD_ID: &str = "netio@32473";

/// How one destination renders records.
#[derive(Clone)]
pub(super) struct Format {
    transport: Transport,
    facility: u8,
    app_name: String,
    hostname: String,
    pid: u32,
}

/// RFC 5424 PARAM-VALUE escaping: `"`, `\` and `]` get a backslash.
fn sd_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Whether a field name can be an SD-PARAM name: 1 to 32 printable ASCII
/// characters other than `=`, space, `]` and `"`.
pub fn valid_param_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| (33..=126).contains(&b) && !b"=]\"".contains(&b))
}

impl Format {
    /// How `config`'s destination renders, as this process on this host.
    pub(super) fn new(config: &Syslog) -> Self {
        Format {
            transport: config.transport,
            facility: config.facility_code(),
            app_name: config.app_name.clone(),
            hostname: hostname(),
            pid: std::process::id(),
        }
    }

    fn pri(&self, record: &Record) -> u16 {
        self.facility as u16 * 8 + record.kind().priority() as u16
    }

    /// The message without transport framing.
    pub(super) fn render(&self, record: &Record, now: SystemTime) -> io::Result<Vec<u8>> {
        let mut out = String::with_capacity(512);
        if self.transport == Transport::Local {
            // What syslog(3) sends to /dev/log: no hostname (the reader adds
            // its own), local time, and a line of text.
            let _ = write!(
                out,
                "<{}>{} {}[{}]: {}",
                self.pri(record),
                rfc3164_local(now),
                self.app_name,
                self.pid,
                printable(&record.summary())
            );
            return Ok(out.into_bytes());
        }
        let _ = write!(
            out,
            "<{}>1 {} {} {} {} {} [{SD_ID}",
            self.pri(record),
            rfc3339_utc(now),
            self.hostname,
            self.app_name,
            self.pid,
            record.kind().name()
        );
        for (name, value) in &record.fields {
            if *name == field::MESSAGE {
                continue;
            }
            if !valid_param_name(name) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("field name {name:?} cannot be an RFC 5424 SD-PARAM name (at most 32 characters)"),
                ));
            }
            let _ = write!(out, " {name}=\"");
            sd_escape(&value.text(), &mut out);
            out.push('"');
        }
        out.push_str("] ");
        out.push_str(&printable(&record.summary()));
        Ok(out.into_bytes())
    }
}

/// This host's name for RFC 5424's HOSTNAME: `-` (the nil value) when it
/// has none.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let name = if rc == 0 {
        CStr::from_bytes_until_nul(&buf)
            .ok()
            .and_then(|c| c.to_str().ok())
            .unwrap_or("")
            .to_string()
    } else {
        String::new()
    };
    if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b)) {
        "-".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::record::samples;

    fn format(transport: Transport) -> Format {
        Format {
            transport,
            facility: 16,
            app_name: "netio".into(),
            hostname: "db1".into(),
            pid: 42,
        }
    }

    #[test]
    fn every_field_name_fits_an_sd_param_name() {
        for r in samples() {
            for (name, _) in &r.fields {
                assert!(valid_param_name(name), "{name}");
            }
        }
    }

    #[test]
    fn rfc5424_carries_every_field_but_message_as_escaped_structured_data() {
        let r = Record::degraded("a\"b\\c]d", 3, Some(4), "x");
        let t = UNIX_EPOCH + Duration::from_micros(1_714_566_896_123_456);
        let m = String::from_utf8(format(Transport::Tcp).render(&r, t).unwrap()).unwrap();
        // local0 (16) * 8 + warning (4).
        let head =
            "<132>1 2024-05-01T12:34:56.123456Z db1 netio 42 degraded [netio@32473 MESSAGE_ID=\"";
        assert!(m.starts_with(head), "{m}");
        assert!(
            m.contains(r#" NETIO_REASON="a\"b\\c\]d" NETIO_COUNT="3" NETIO_LOST_BYTES="4"]"#),
            "{m}"
        );
        assert!(
            m.ends_with(
                r#"] netio degraded: reason="a\u0022b\u005cc]d" count=3 lost_bytes=4 detail="x""#
            ),
            "{m}"
        );
        assert!(!m.contains("MESSAGE=\""), "{m}");
    }

    #[test]
    fn local_messages_are_rfc3164_with_the_summary() {
        let r = Record::stopping("1.2");
        let m = String::from_utf8(
            format(Transport::Local)
                .render(&r, SystemTime::now())
                .unwrap(),
        )
        .unwrap();
        let (pri, rest) = m.split_once('>').unwrap();
        assert_eq!(pri, "<133");
        // "Mmm dd hh:mm:ss " is 16 bytes.
        assert_eq!(&rest[16..], "netio[42]: netio 1.2 stopping", "{m}");
    }

    /// The SD-PARAMs of netio's element, unescaped, and the text after it.
    fn split_5424(m: &str) -> (Vec<(String, String)>, String) {
        let start = m.find(&format!("[{SD_ID}")).unwrap() + SD_ID.len() + 1;
        let mut params = Vec::new();
        let mut rest = &m[start..];
        while let Some(param) = rest.strip_prefix(' ') {
            let (name, value) = param.split_once("=\"").unwrap();
            let (mut text, mut chars) = (String::new(), value.char_indices());
            let end = loop {
                match chars.next().unwrap() {
                    (_, '\\') => text.push(chars.next().unwrap().1),
                    (i, '"') => break i,
                    (_, c) => text.push(c),
                }
            };
            params.push((name.to_string(), text));
            rest = &value[end + 1..];
        }
        (params, rest.strip_prefix("] ").unwrap().to_string())
    }

    #[test]
    fn a_hostile_process_name_keeps_its_real_value_in_sd_and_no_control_in_the_text() {
        let comm = "x\"] [evil@1 NETIO_SENT_BYTES=\"0\"]\n\x1b[2K\\";
        let t = crate::record::TrafficFields {
            target: "db",
            sent: 10,
            received: 20,
            interval_ms: 1000,
            backend: "kprobe",
        };
        let who = crate::record::Who {
            pid: 7,
            comm,
            uid: Some(65534),
            exe: Some(comm),
        };
        let r = Record::process_traffic(&t, &who);
        let m = String::from_utf8(
            format(Transport::Tcp)
                .render(&r, SystemTime::now())
                .unwrap(),
        )
        .unwrap();
        let (params, text) = split_5424(&m);
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("NETIO_COMM"), Some(comm), "{m}");
        assert_eq!(get("NETIO_EXE"), Some(comm), "{m}");
        assert_eq!(get("NETIO_UID"), Some("65534"), "{m}");
        assert_eq!(get("NETIO_SENT_BYTES"), Some("10"), "{m}");
        assert_eq!(params.len(), r.fields.len() - 1, "{m}");
        assert_eq!(text, r.summary(), "{m}");
        assert!(!text.chars().any(char::is_control), "{text:?}");

        let local = format(Transport::Local)
            .render(&r, SystemTime::now())
            .unwrap();
        let local = String::from_utf8(local).unwrap();
        assert!(!local.chars().any(char::is_control), "{local:?}");
        assert!(local.ends_with(&r.summary()), "{local}");
    }

    #[test]
    fn a_summary_with_control_characters_reaches_syslog_escaped() {
        let mut r = Record::stopping("1.2");
        r.fields[0].1 = crate::record::Value::Str("a\nb\x1bc".into());
        for transport in [Transport::Local, Transport::Tcp] {
            let m = format(transport).render(&r, SystemTime::now()).unwrap();
            let m = String::from_utf8(m).unwrap();
            assert!(m.ends_with(r"a\nb\u001bc"), "{m:?}");
        }
    }
}
