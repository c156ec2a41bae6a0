//! The object's programs, one variant per field of the generated skeleton:
//! a program renamed or removed in bpf/ is a compile error here, not
//! a surprise at run time.

use std::fmt;

use libbpf_rs::{OpenProgramMut, ProgramMut};

use crate::skel::{NetioProgs, OpenNetioProgs};

macro_rules! progs {
    ($($variant:ident = $field:ident,)*) => {
        /// A program of the object, named in messages as in its C source.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Prog {
            $($variant,)*
        }

        impl Prog {
            /// Every program, in the object's order: the order libbpf loads
            /// them in and the loader attaches them in.
            pub const ALL: &'static [Prog] = &[$(Prog::$variant,)*];

            /// The program's name in its C source.
            pub fn name(self) -> &'static str {
                match self {
                    $(Prog::$variant => stringify!($field),)*
                }
            }

            pub(crate) fn open<'a, 'obj>(
                self,
                progs: &'a mut OpenNetioProgs<'obj>,
            ) -> &'a mut OpenProgramMut<'obj> {
                match self {
                    $(Prog::$variant => &mut progs.$field,)*
                }
            }

            pub(crate) fn loaded<'a, 'obj>(self, progs: &'a NetioProgs<'obj>) -> &'a ProgramMut<'obj> {
                match self {
                    $(Prog::$variant => &progs.$field,)*
                }
            }
        }
    };
}

progs! {
    TpOwnerConnect = tp_owner_connect,
    TpOwnerDestroy = tp_owner_destroy,
    TpTcpDestroySock = tp_tcp_destroy_sock,
    IterDrainSockets = iter_drain_sockets,
    TpSockSendLength = tp_sock_send_length,
    TpSockRecvLength = tp_sock_recv_length,
    TpExitAccept4 = tp_exit_accept4,
    TpExitAccept = tp_exit_accept,
    TpEnterSplice = tp_enter_splice,
    TpExitSplice = tp_exit_splice,
    TpEnterSendfile = tp_enter_sendfile,
    TpExitSendfile = tp_exit_sendfile,
    FexitTcpSendmsg = fexit_tcp_sendmsg,
    FexitTcpSendpage = fexit_tcp_sendpage,
    FexitTcpRecvmsg = fexit_tcp_recvmsg,
    FexitTcpRecvmsgNoaddrlen = fexit_tcp_recvmsg_noaddrlen,
    FexitTcpRecvmsgNonblock = fexit_tcp_recvmsg_nonblock,
    FexitTcpSpliceRead = fexit_tcp_splice_read,
    FexitInetCskAccept = fexit_inet_csk_accept,
    FexitInetCskAcceptFlags = fexit_inet_csk_accept_flags,
    FexitUnixStreamSendmsg = fexit_unix_stream_sendmsg,
    FexitUnixStreamRecvmsg = fexit_unix_stream_recvmsg,
    FexitUnixSeqpacketSendmsg = fexit_unix_seqpacket_sendmsg,
    FexitUnixSeqpacketRecvmsg = fexit_unix_seqpacket_recvmsg,
    FexitUnixStreamSpliceRead = fexit_unix_stream_splice_read,
    FexitUnixStreamSendpage = fexit_unix_stream_sendpage,
    KrpInetCskAccept = krp_inet_csk_accept,
    KpTcpSendmsg = kp_tcp_sendmsg,
    KrpTcpSendmsg = krp_tcp_sendmsg,
    KpTcpSendpage = kp_tcp_sendpage,
    KrpTcpSendpage = krp_tcp_sendpage,
    KpTcpRecvmsg = kp_tcp_recvmsg,
    KpTcpRecvmsgNonblock = kp_tcp_recvmsg_nonblock,
    KrpTcpRecvmsg = krp_tcp_recvmsg,
    KpTcpSpliceRead = kp_tcp_splice_read,
    KrpTcpSpliceRead = krp_tcp_splice_read,
    KpUnixStreamSendmsg = kp_unix_stream_sendmsg,
    KrpUnixStreamSendmsg = krp_unix_stream_sendmsg,
    KpUnixStreamRecvmsg = kp_unix_stream_recvmsg,
    KrpUnixStreamRecvmsg = krp_unix_stream_recvmsg,
    KpUnixSeqpacketSendmsg = kp_unix_seqpacket_sendmsg,
    KrpUnixSeqpacketSendmsg = krp_unix_seqpacket_sendmsg,
    KpUnixSeqpacketRecvmsg = kp_unix_seqpacket_recvmsg,
    KrpUnixSeqpacketRecvmsg = krp_unix_seqpacket_recvmsg,
    KpUnixStreamSpliceRead = kp_unix_stream_splice_read,
    KrpUnixStreamSpliceRead = krp_unix_stream_splice_read,
    KpUnixStreamSendpage = kp_unix_stream_sendpage,
    KrpUnixStreamSendpage = krp_unix_stream_sendpage,
    RawTpFork = raw_tp_fork,
    RawTpExec = raw_tp_exec,
    RawTpExit = raw_tp_exit,
}

impl fmt::Display for Prog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use std::mem::MaybeUninit;

    use libbpf_rs::skel::{OpenSkel, SkelBuilder};

    use super::Prog;
    use crate::skel::NetioSkelBuilder;

    #[test]
    fn every_program_of_the_object_is_a_prog_in_the_objects_order() {
        let mut storage = MaybeUninit::uninit();
        let mut open = NetioSkelBuilder::default()
            .open(&mut storage)
            .expect("open the embedded object");
        let in_object: Vec<String> = open
            .open_object_mut()
            .progs_mut()
            .map(|p| p.name().to_string_lossy().into_owned())
            .collect();
        let listed: Vec<&str> = Prog::ALL.iter().map(|p| p.name()).collect();
        assert_eq!(in_object, listed);
        for &p in Prog::ALL {
            assert_eq!(p.open(&mut open.progs).name().to_string_lossy(), p.name());
        }
    }
}
