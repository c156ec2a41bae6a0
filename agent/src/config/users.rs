//! A target's `user` constraint: user names or numeric uids, and their
//! uids as the system's user database (getpwnam_r, so NSS: /etc/passwd,
//! LDAP, sssd) gives them now. A name is looked up again whenever asked,
//! because a package may create its user after netio starts.

use std::collections::BTreeSet;
use std::ffi::{CStr, CString};
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The uid that means "no uid" ((uid_t)-1): never a user's.
const NO_UID: u32 = u32::MAX;

/// One entry of `user`: a name, or a uid given as a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum User {
    Name(String),
    Uid(u32),
}

/// What a target's `user` list stands for now: the uids it allows, and
/// the names the user database does not know (yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uids {
    pub uids: BTreeSet<u32>,
    pub unknown: Vec<String>,
}

/// Resolves every entry: uids as given, names through the user database.
/// A name that cannot be looked up counts as unknown.
pub fn resolve(users: &[User]) -> Uids {
    let mut out = Uids::default();
    for u in users {
        match u {
            User::Uid(uid) => {
                out.uids.insert(*uid);
            }
            User::Name(name) => match uid_of_name(name) {
                Some(uid) => {
                    out.uids.insert(uid);
                }
                None => out.unknown.push(name.clone()),
            },
        }
    }
    out
}

/// How `check-config` shows what a `user` list stands for now:
/// `mysql = uid 102, uid 0 (root), mariadb: no such user (yet)`.
pub fn describe(users: &[User]) -> String {
    let shown: Vec<String> = users
        .iter()
        .map(|u| match u {
            User::Name(n) => match uid_of_name(n) {
                Some(uid) => format!("{n} = uid {uid}"),
                None => format!("{n}: no such user (yet)"),
            },
            User::Uid(uid) => match name_of_uid(*uid) {
                Some(n) => format!("uid {uid} ({n})"),
                None => format!("uid {uid}"),
            },
        })
        .collect();
    shown.join(", ")
}

impl User {
    /// Why this entry could never be a process's user, if it could not.
    pub(super) fn invalid(&self) -> Option<String> {
        let User::Name(name) = self else {
            return None;
        };
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
            return Some(format!(
                "{} is not a user name: write a uid as a number, without quotes",
                super::error::shown(name)
            ));
        }
        if valid_name(name) {
            return None;
        }
        Some(format!(
            "{} is not a user name: 1 to 32 of letters, digits, '_', '-' and '.', not starting with a digit, '-' or '.' (a trailing '$' allowed)",
            super::error::shown(name)
        ))
    }
}

/// The portable user names useradd and adduser create (and Samba's
/// machine accounts, with their trailing '$').
fn valid_name(name: &str) -> bool {
    let body = name.strip_suffix('$').unwrap_or(name);
    let mut bytes = body.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    name.len() <= 32
        && (first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// The uid of a user name, as the user database says now.
pub fn uid_of_name(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    lookup(|pwd, buf, len, result| {
        // SAFETY: every pointer is valid for the call; buf holds len bytes.
        unsafe { libc::getpwnam_r(c.as_ptr(), pwd, buf, len, result) }
    })
    .map(|(uid, _)| uid)
}

/// The name of a uid, for messages.
pub fn name_of_uid(uid: u32) -> Option<String> {
    lookup(|pwd, buf, len, result| {
        // SAFETY: every pointer is valid for the call; buf holds len bytes.
        unsafe { libc::getpwuid_r(uid, pwd, buf, len, result) }
    })
    .map(|(_, name)| name)
}

/// Runs a getpw*_r call with a buffer that grows until the entry fits;
/// the entry's uid and name, or None (no such user, or no answer).
fn lookup(
    call: impl Fn(*mut libc::passwd, *mut libc::c_char, usize, *mut *mut libc::passwd) -> i32,
) -> Option<(u32, String)> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: an all-zero passwd is a valid value for the call to fill.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result = std::ptr::null_mut();
        let rc = call(&mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut result);
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || result.is_null() {
            return None;
        }
        // SAFETY: on success pw_name points to a NUL-terminated string in buf.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) };
        return Some((pwd.pw_uid, name.to_string_lossy().into_owned()));
    }
}

impl<'de> Deserialize<'de> for User {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UserVisitor)
    }
}

struct UserVisitor;

impl Visitor<'_> for UserVisitor {
    type Value = User;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a user name in quotes or a uid as a number")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<User, E> {
        Ok(User::Name(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<User, E> {
        match u32::try_from(v) {
            Ok(uid) if uid != NO_UID => Ok(User::Uid(uid)),
            _ => Err(E::custom(format!(
                "uid {v} is out of range: uids are 0 to {}",
                NO_UID - 1
            ))),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<User, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(format!(
                "uid {v} is out of range: uids are 0 to {}",
                NO_UID - 1
            ))),
        }
    }
}

/// As written: a name in quotes, a uid as a number.
impl Serialize for User {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            User::Name(n) => s.serialize_str(n),
            User::Uid(u) => s.serialize_u32(*u),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_through_the_user_database_and_uids_stand() {
        let got = resolve(&[
            User::Name("root".into()),
            User::Uid(65534),
            User::Name("netio-no-such-user".into()),
        ]);
        assert_eq!(got.uids, BTreeSet::from([0, 65534]));
        assert_eq!(got.unknown, ["netio-no-such-user"]);
        assert_eq!(name_of_uid(0).as_deref(), Some("root"));
        assert_eq!(uid_of_name("root"), Some(0));
        assert_eq!(uid_of_name("a\0b"), None);
    }

    #[test]
    fn user_names_are_the_portable_ones() {
        for ok in [
            "mysql",
            "postgres",
            "_apt",
            "systemd-timesync",
            "a.b",
            "HOST$",
            "x",
        ] {
            assert_eq!(User::Name(ok.into()).invalid(), None, "{ok}");
        }
        for bad in [
            "",
            "my sql",
            "a:b",
            "-x",
            ".x",
            "9x",
            "é",
            "a/b",
            &"a".repeat(33),
        ] {
            assert!(User::Name(bad.into()).invalid().is_some(), "{bad:?}");
        }
        let digits = User::Name("999".into()).invalid().unwrap();
        assert!(digits.contains("as a number, without quotes"), "{digits}");
        assert_eq!(User::Uid(0).invalid(), None);
    }
}
