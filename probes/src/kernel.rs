//! What the running kernel offers, read once from BTF and sysfs, and the
//! plan it makes for a backend: which programs it needs here, or why it
//! cannot work.

use std::path::Path;

use libbpf_rs::btf::types::{Func, FuncProto};
use libbpf_rs::btf::{Btf, BtfType};

use crate::backend::Backend;
use crate::error::{NoSocketPath, Unsupported};
use crate::progs::Prog;
use crate::report::{BlindSpot, OptionalGroup};

/// Programs every backend loads: they keep the tracked set current.
pub(crate) const LIFECYCLE: [Prog; 3] = [Prog::RawTpFork, Prog::RawTpExec, Prog::RawTpExit];

/// The socket path's destroy-time drain, attached like the counting programs.
pub(crate) const SOCKET_DRAIN: Prog = Prog::TpTcpDestroySock;

/// The socket path's drain iterator, run by `Probes::drain_sockets`.
pub(crate) const SOCKET_ITER: Prog = Prog::IterDrainSockets;

/// Programs every backend counts with that keep sockets' owners: the
/// sockets tracked processes connect, and the end of every owner.
const OWNERS: [Prog; 2] = [Prog::TpOwnerConnect, Prog::TpOwnerDestroy];

/// The kernel functions whose signatures the plans depend on.
const FUNCS: [&str; 11] = [
    "tcp_sendmsg",
    "tcp_sendpage",
    "tcp_recvmsg",
    "tcp_splice_read",
    "inet_csk_accept",
    "unix_stream_sendmsg",
    "unix_stream_recvmsg",
    "unix_seqpacket_sendmsg",
    "unix_seqpacket_recvmsg",
    "unix_stream_splice_read",
    "unix_stream_sendpage",
];

/// How a backend hooks one kernel function.
#[derive(Debug, Clone, Copy)]
enum Hook {
    /// One program on the function's return (fexit).
    Exit(Prog),
    /// A kprobe at entry and the kretprobe that completes it.
    Kprobe { entry: Prog, ret: Prog },
}

impl Hook {
    fn entry(self) -> Prog {
        match self {
            Hook::Exit(p) | Hook::Kprobe { entry: p, .. } => p,
        }
    }
}

/// The hooks of a backend on TCP's own functions, by function.
struct FunctionHooks {
    sendmsg: Hook,
    splice_read: Hook,
    /// By tcp_recvmsg's parameter count: it lost `nonblock` in 5.19, so
    /// `flags` moved, and newer kernels (6.18 here) dropped `addr_len`, so
    /// the return value moved.
    recvmsg: [(usize, Hook); 3],
    /// Before 6.5, sendfile and splice to a socket went this way.
    sendpage: Hook,
    /// Unix stream and seqpacket sockets' functions, by name; the last,
    /// unix_stream_sendpage, only before 6.5.
    unix: [(&'static str, Hook); 6],
}

const FENTRY: FunctionHooks = FunctionHooks {
    sendmsg: Hook::Exit(Prog::FexitTcpSendmsg),
    splice_read: Hook::Exit(Prog::FexitTcpSpliceRead),
    recvmsg: [
        (6, Hook::Exit(Prog::FexitTcpRecvmsgNonblock)),
        (5, Hook::Exit(Prog::FexitTcpRecvmsg)),
        (4, Hook::Exit(Prog::FexitTcpRecvmsgNoaddrlen)),
    ],
    sendpage: Hook::Exit(Prog::FexitTcpSendpage),
    unix: [
        (
            "unix_stream_sendmsg",
            Hook::Exit(Prog::FexitUnixStreamSendmsg),
        ),
        (
            "unix_stream_recvmsg",
            Hook::Exit(Prog::FexitUnixStreamRecvmsg),
        ),
        (
            "unix_seqpacket_sendmsg",
            Hook::Exit(Prog::FexitUnixSeqpacketSendmsg),
        ),
        (
            "unix_seqpacket_recvmsg",
            Hook::Exit(Prog::FexitUnixSeqpacketRecvmsg),
        ),
        (
            "unix_stream_splice_read",
            Hook::Exit(Prog::FexitUnixStreamSpliceRead),
        ),
        (
            "unix_stream_sendpage",
            Hook::Exit(Prog::FexitUnixStreamSendpage),
        ),
    ],
};

const RECVMSG_KPROBE: Hook = Hook::Kprobe {
    entry: Prog::KpTcpRecvmsg,
    ret: Prog::KrpTcpRecvmsg,
};

const KPROBE: FunctionHooks = FunctionHooks {
    sendmsg: Hook::Kprobe {
        entry: Prog::KpTcpSendmsg,
        ret: Prog::KrpTcpSendmsg,
    },
    splice_read: Hook::Kprobe {
        entry: Prog::KpTcpSpliceRead,
        ret: Prog::KrpTcpSpliceRead,
    },
    recvmsg: [
        (
            6,
            Hook::Kprobe {
                entry: Prog::KpTcpRecvmsgNonblock,
                ret: Prog::KrpTcpRecvmsg,
            },
        ),
        (5, RECVMSG_KPROBE),
        // flags is the 4th argument with or without addr_len.
        (4, RECVMSG_KPROBE),
    ],
    sendpage: Hook::Kprobe {
        entry: Prog::KpTcpSendpage,
        ret: Prog::KrpTcpSendpage,
    },
    unix: [
        (
            "unix_stream_sendmsg",
            Hook::Kprobe {
                entry: Prog::KpUnixStreamSendmsg,
                ret: Prog::KrpUnixStreamSendmsg,
            },
        ),
        (
            "unix_stream_recvmsg",
            Hook::Kprobe {
                entry: Prog::KpUnixStreamRecvmsg,
                ret: Prog::KrpUnixStreamRecvmsg,
            },
        ),
        (
            "unix_seqpacket_sendmsg",
            Hook::Kprobe {
                entry: Prog::KpUnixSeqpacketSendmsg,
                ret: Prog::KrpUnixSeqpacketSendmsg,
            },
        ),
        (
            "unix_seqpacket_recvmsg",
            Hook::Kprobe {
                entry: Prog::KpUnixSeqpacketRecvmsg,
                ret: Prog::KrpUnixSeqpacketRecvmsg,
            },
        ),
        (
            "unix_stream_splice_read",
            Hook::Kprobe {
                entry: Prog::KpUnixStreamSpliceRead,
                ret: Prog::KrpUnixStreamSpliceRead,
            },
        ),
        (
            "unix_stream_sendpage",
            Hook::Kprobe {
                entry: Prog::KpUnixStreamSendpage,
                ret: Prog::KrpUnixStreamSendpage,
            },
        ),
    ],
};

/// The fentry backend's hook on the sockets a process accepts, by
/// inet_csk_accept's parameter count: (sk, arg) from 6.10, (sk, flags,
/// err, kern) before.
const FENTRY_ACCEPT: [(usize, Prog); 2] = [
    (2, Prog::FexitInetCskAccept),
    (4, Prog::FexitInetCskAcceptFlags),
];

/// The tracepoint backend's counting programs.
const TRACEPOINT: [Prog; 2] = [Prog::TpSockSendLength, Prog::TpSockRecvLength];

/// What the sock_*_length tracepoints do not see (docs/kernels.md).
const SPLICE_FROM_SOCKET: OptionalGroup = OptionalGroup {
    what: "splice and sendfile reading from a socket",
    progs: &[
        Prog::TpEnterSplice,
        Prog::TpExitSplice,
        Prog::TpEnterSendfile,
        Prog::TpExitSendfile,
    ],
};

/// The tracepoint backend's view of the sockets a process accepts.
const ACCEPTED: OptionalGroup = OptionalGroup {
    what: "sockets a target accepts and passes on before their first byte",
    progs: &[Prog::TpExitAccept4, Prog::TpExitAccept],
};

/// The programs of one backend on this kernel.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// What the backend cannot work without, in the order it is reported.
    pub required: Vec<Prog>,
    /// The kretprobes among them, with the function each returns from.
    pub kretprobes: Vec<(Prog, &'static str)>,
    pub optional: Vec<OptionalGroup>,
    pub notes: Vec<BlindSpot>,
}

impl Plan {
    /// Whether the backend loads `prog` (lifecycle programs aside).
    pub fn loads(&self, prog: Prog) -> bool {
        self.required.contains(&prog) || self.optional.iter().any(|g| g.progs.contains(&prog))
    }

    pub fn kretprobe_func(&self, prog: Prog) -> Option<&'static str> {
        self.kretprobes
            .iter()
            .find(|(p, _)| *p == prog)
            .map(|(_, f)| *f)
    }
}

/// What the running kernel offers.
pub(crate) struct KernelFacts {
    btf: Result<(), Unsupported>,
    /// Parameter counts of FUNCS, where BTF has the function.
    funcs: Vec<(&'static str, Option<usize>)>,
    sock_tracepoints: bool,
    kprobe_pmu: bool,
    /// Why the socket path cannot work here, if BTF shows it cannot.
    pub socket_path: Result<(), NoSocketPath>,
}

impl KernelFacts {
    pub fn read() -> Self {
        let mut facts = KernelFacts {
            btf: Err(Unsupported::NoBtf),
            funcs: Vec::new(),
            sock_tracepoints: false,
            kprobe_pmu: Path::new("/sys/bus/event_source/devices/kprobe").exists(),
            socket_path: Err(NoSocketPath::NoBtf),
        };
        if !Path::new("/sys/kernel/btf/vmlinux").exists() {
            return facts;
        }
        let btf = match Btf::from_vmlinux() {
            Ok(btf) => btf,
            Err(e) => {
                facts.btf = Err(Unsupported::BtfUnreadable(e.to_string()));
                return facts;
            }
        };
        facts.btf = Ok(());
        for name in FUNCS {
            let params = btf
                .type_by_name::<Func<'_>>(name)
                .and_then(|f| f.next_type())
                .and_then(|t| FuncProto::try_from(t).ok())
                .map(|p| p.len());
            facts.funcs.push((name, params));
        }
        let has = |name: &str| btf.type_by_name::<BtfType<'_>>(name).is_some();
        facts.sock_tracepoints = has("btf_trace_sock_send_length");
        facts.socket_path = if !has("btf_trace_tcp_destroy_sock") {
            Err(NoSocketPath::NoDestroyTracepoint)
        } else if !has("bpf_iter__bpf_sk_storage_map") {
            Err(NoSocketPath::NoStorageIterator)
        } else {
            Ok(())
        };
        facts
    }

    fn params(&self, func: &str) -> Option<usize> {
        self.funcs
            .iter()
            .find(|(n, _)| *n == func)
            .and_then(|(_, p)| *p)
    }

    /// The programs a backend needs here, plus the optional ones, or why it
    /// cannot work on this kernel.
    pub fn plan(&self, backend: Backend) -> Result<Plan, Unsupported> {
        self.btf.clone()?;
        let hooks = match backend {
            Backend::Fentry => &FENTRY,
            Backend::Kprobe if !self.kprobe_pmu => return Err(Unsupported::NoKprobePmu),
            Backend::Kprobe => &KPROBE,
            Backend::Tracepoint => return self.plan_tracepoint(),
        };
        let need = |f: &'static str| self.params(f).ok_or(Unsupported::NoFunction(f));
        need("tcp_sendmsg")?;
        need("tcp_splice_read")?;
        let recv_params = need("tcp_recvmsg")?;
        let recvmsg = hooks
            .recvmsg
            .iter()
            .find(|(n, _)| *n == recv_params)
            .map(|(_, h)| *h)
            .ok_or(Unsupported::RecvmsgParams(recv_params))?;
        let mut unseen = Vec::new();
        let mut hooked = vec![
            ("tcp_sendmsg", hooks.sendmsg),
            ("tcp_splice_read", hooks.splice_read),
            ("tcp_recvmsg", recvmsg),
        ];
        if self.params("tcp_sendpage").is_some() {
            hooked.push(("tcp_sendpage", hooks.sendpage));
        }
        let unix = self.unix_hooks(&hooks.unix);
        match unix {
            Some(unix) => hooked.extend(unix),
            None => unseen.push(BlindSpot::UnixUnseen),
        }
        // Entries first, then their returns, each in the same order.
        let mut plan = Plan {
            required: hooked.iter().map(|(_, h)| h.entry()).collect(),
            notes: unseen,
            ..Plan::default()
        };
        for (func, hook) in hooked {
            if let Hook::Kprobe { ret, .. } = hook {
                plan.required.push(ret);
                plan.kretprobes.push((ret, func));
            }
        }
        self.plan_accept(backend, &mut plan);
        plan.required.extend(OWNERS);
        Ok(plan)
    }

    /// The hooks on Unix sockets' functions, or None where the kernel lacks
    /// one of those every kernel since 5.10 has (unix_stream_sendpage is
    /// gone from 6.5 on).
    fn unix_hooks(&self, hooks: &[(&'static str, Hook)]) -> Option<Vec<(&'static str, Hook)>> {
        let mut out = Vec::new();
        for &(func, hook) in hooks {
            match self.params(func) {
                Some(_) => out.push((func, hook)),
                None if func == "unix_stream_sendpage" => {}
                None => return None,
            }
        }
        Some(out)
    }

    /// The hook on inet_csk_accept: a kretprobe reads the return whatever
    /// the signature; fexit needs to know where it is.
    fn plan_accept(&self, backend: Backend, plan: &mut Plan) {
        let params = self.params("inet_csk_accept");
        if backend == Backend::Kprobe {
            if params.is_some() {
                plan.required.push(Prog::KrpInetCskAccept);
                plan.kretprobes
                    .push((Prog::KrpInetCskAccept, "inet_csk_accept"));
            } else {
                plan.notes.push(BlindSpot::AcceptUnseen);
            }
            return;
        }
        match FENTRY_ACCEPT.iter().find(|(n, _)| Some(*n) == params) {
            Some((_, prog)) => plan.required.push(*prog),
            None => plan.notes.push(BlindSpot::AcceptUnseen),
        }
    }

    fn plan_tracepoint(&self) -> Result<Plan, Unsupported> {
        if !self.sock_tracepoints {
            return Err(Unsupported::NoSockTracepoints);
        }
        let mut plan = Plan {
            required: TRACEPOINT.to_vec(),
            optional: vec![SPLICE_FROM_SOCKET, ACCEPTED],
            ..Plan::default()
        };
        plan.required.extend(OWNERS);
        if self.params("tcp_sendpage").is_some() {
            plan.notes.push(BlindSpot::SendpageUnseen);
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel with BTF, every function with `recvmsg` parameters for
    /// tcp_recvmsg and tcp_sendpage only when `sendpage`.
    fn facts(recvmsg: usize, sendpage: bool) -> KernelFacts {
        KernelFacts {
            btf: Ok(()),
            funcs: vec![
                ("tcp_sendmsg", Some(3)),
                ("tcp_sendpage", sendpage.then_some(5)),
                ("tcp_recvmsg", Some(recvmsg)),
                ("tcp_splice_read", Some(5)),
                ("inet_csk_accept", Some(4)),
                ("unix_stream_sendmsg", Some(3)),
                ("unix_stream_recvmsg", Some(4)),
                ("unix_seqpacket_sendmsg", Some(3)),
                ("unix_seqpacket_recvmsg", Some(4)),
                ("unix_stream_splice_read", Some(5)),
                ("unix_stream_sendpage", sendpage.then_some(5)),
            ],
            sock_tracepoints: true,
            kprobe_pmu: true,
            socket_path: Ok(()),
        }
    }

    fn names(progs: &[Prog]) -> Vec<&'static str> {
        progs.iter().map(|p| p.name()).collect()
    }

    #[test]
    fn fentry_picks_the_recvmsg_variant_of_the_kernels_signature() {
        for (params, recv) in [
            (6, "fexit_tcp_recvmsg_nonblock"),
            (5, "fexit_tcp_recvmsg"),
            (4, "fexit_tcp_recvmsg_noaddrlen"),
        ] {
            let plan = facts(params, true).plan(Backend::Fentry).unwrap();
            assert_eq!(
                names(&plan.required),
                [
                    "fexit_tcp_sendmsg",
                    "fexit_tcp_splice_read",
                    recv,
                    "fexit_tcp_sendpage",
                    "fexit_unix_stream_sendmsg",
                    "fexit_unix_stream_recvmsg",
                    "fexit_unix_seqpacket_sendmsg",
                    "fexit_unix_seqpacket_recvmsg",
                    "fexit_unix_stream_splice_read",
                    "fexit_unix_stream_sendpage",
                    "fexit_inet_csk_accept_flags",
                    "tp_owner_connect",
                    "tp_owner_destroy",
                ]
            );
            assert!(plan.kretprobes.is_empty());
        }
        let mut f = facts(5, false);
        let accept = |f: &mut KernelFacts, n| {
            f.funcs
                .iter_mut()
                .find(|(name, _)| *name == "inet_csk_accept")
                .unwrap()
                .1 = n;
        };
        accept(&mut f, Some(2));
        let plan = f.plan(Backend::Fentry).unwrap();
        assert!(plan.loads(Prog::FexitInetCskAccept));
        assert!(!plan.loads(Prog::FexitUnixStreamSendpage));
        accept(&mut f, Some(3));
        let plan = f.plan(Backend::Fentry).unwrap();
        assert!(!plan.loads(Prog::FexitInetCskAccept));
        assert!(matches!(plan.notes[..], [BlindSpot::AcceptUnseen]));
        let e = facts(7, false).plan(Backend::Fentry).unwrap_err();
        assert_eq!(
            e.to_string(),
            "tcp_recvmsg has 7 parameters here; netio knows 4, 5 and 6"
        );
    }

    #[test]
    fn kprobe_pairs_each_kprobe_with_its_kretprobe() {
        let plan = facts(6, true).plan(Backend::Kprobe).unwrap();
        assert_eq!(
            names(&plan.required),
            [
                "kp_tcp_sendmsg",
                "kp_tcp_splice_read",
                "kp_tcp_recvmsg_nonblock",
                "kp_tcp_sendpage",
                "kp_unix_stream_sendmsg",
                "kp_unix_stream_recvmsg",
                "kp_unix_seqpacket_sendmsg",
                "kp_unix_seqpacket_recvmsg",
                "kp_unix_stream_splice_read",
                "kp_unix_stream_sendpage",
                "krp_tcp_sendmsg",
                "krp_tcp_splice_read",
                "krp_tcp_recvmsg",
                "krp_tcp_sendpage",
                "krp_unix_stream_sendmsg",
                "krp_unix_stream_recvmsg",
                "krp_unix_seqpacket_sendmsg",
                "krp_unix_seqpacket_recvmsg",
                "krp_unix_stream_splice_read",
                "krp_unix_stream_sendpage",
                "krp_inet_csk_accept",
                "tp_owner_connect",
                "tp_owner_destroy",
            ]
        );
        assert_eq!(
            plan.kretprobes,
            [
                (Prog::KrpTcpSendmsg, "tcp_sendmsg"),
                (Prog::KrpTcpSpliceRead, "tcp_splice_read"),
                (Prog::KrpTcpRecvmsg, "tcp_recvmsg"),
                (Prog::KrpTcpSendpage, "tcp_sendpage"),
                (Prog::KrpUnixStreamSendmsg, "unix_stream_sendmsg"),
                (Prog::KrpUnixStreamRecvmsg, "unix_stream_recvmsg"),
                (Prog::KrpUnixSeqpacketSendmsg, "unix_seqpacket_sendmsg"),
                (Prog::KrpUnixSeqpacketRecvmsg, "unix_seqpacket_recvmsg"),
                (Prog::KrpUnixStreamSpliceRead, "unix_stream_splice_read"),
                (Prog::KrpUnixStreamSendpage, "unix_stream_sendpage"),
                (Prog::KrpInetCskAccept, "inet_csk_accept"),
            ]
        );
        let plan = facts(4, false).plan(Backend::Kprobe).unwrap();
        assert_eq!(
            names(&plan.required),
            [
                "kp_tcp_sendmsg",
                "kp_tcp_splice_read",
                "kp_tcp_recvmsg",
                "kp_unix_stream_sendmsg",
                "kp_unix_stream_recvmsg",
                "kp_unix_seqpacket_sendmsg",
                "kp_unix_seqpacket_recvmsg",
                "kp_unix_stream_splice_read",
                "krp_tcp_sendmsg",
                "krp_tcp_splice_read",
                "krp_tcp_recvmsg",
                "krp_unix_stream_sendmsg",
                "krp_unix_stream_recvmsg",
                "krp_unix_seqpacket_sendmsg",
                "krp_unix_seqpacket_recvmsg",
                "krp_unix_stream_splice_read",
                "krp_inet_csk_accept",
                "tp_owner_connect",
                "tp_owner_destroy",
            ]
        );
    }

    #[test]
    fn a_kernel_without_the_unix_functions_counts_tcp_and_says_unix_is_unseen() {
        let mut f = facts(5, false);
        f.funcs.retain(|(n, _)| *n != "unix_seqpacket_recvmsg");
        for backend in [Backend::Fentry, Backend::Kprobe] {
            let plan = f.plan(backend).unwrap();
            assert!(!plan.required.iter().any(|p| p.name().contains("unix")));
            assert!(matches!(plan.notes[..], [BlindSpot::UnixUnseen]));
        }
    }

    #[test]
    fn tracepoint_notes_what_tcp_sendpage_hides() {
        let plan = facts(5, true).plan(Backend::Tracepoint).unwrap();
        assert_eq!(
            names(&plan.required),
            [
                "tp_sock_send_length",
                "tp_sock_recv_length",
                "tp_owner_connect",
                "tp_owner_destroy"
            ]
        );
        assert_eq!(plan.optional, [SPLICE_FROM_SOCKET, ACCEPTED]);
        assert!(matches!(plan.notes[..], [BlindSpot::SendpageUnseen]));
        let plan = facts(4, false).plan(Backend::Tracepoint).unwrap();
        assert!(plan.notes.is_empty());
    }

    #[test]
    fn a_kernel_without_what_a_backend_needs_says_what_it_lacks() {
        let mut f = facts(5, false);
        f.kprobe_pmu = false;
        f.sock_tracepoints = false;
        assert_eq!(
            f.plan(Backend::Kprobe).unwrap_err(),
            Unsupported::NoKprobePmu
        );
        assert_eq!(
            f.plan(Backend::Tracepoint).unwrap_err(),
            Unsupported::NoSockTracepoints
        );
        f.funcs.retain(|(n, _)| *n != "tcp_splice_read");
        assert_eq!(
            f.plan(Backend::Fentry).unwrap_err().to_string(),
            "the kernel has no function tcp_splice_read in its BTF"
        );
        f.btf = Err(Unsupported::NoBtf);
        assert_eq!(
            f.plan(Backend::Fentry).unwrap_err().to_string(),
            "the kernel has no BTF (/sys/kernel/btf/vmlinux is missing; needs \
             CONFIG_DEBUG_INFO_BTF)"
        );
    }
}
