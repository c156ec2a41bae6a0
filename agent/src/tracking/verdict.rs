//! What an exec means for a process the kernel matched by the 15 bytes it
//! keeps of a name: userspace's verdict, once it has the full name.

use netio_probes::{Match, TargetId};

/// What userspace decided about a process the kernel matched at exec by
/// the 15 bytes it keeps of a name, or by a name or cgroup whose target's
/// `exe` it then had to pass. Children it forked before the kernel learned
/// of the decision were tracked as it was; they share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Not a target's process, nor were its ancestors: untracked.
    Reject,
    /// This target's, not the one the kernel tracked it for: its full
    /// name's, or the one it was before an exec that failed a constraint.
    Retarget(TargetId),
}

/// What an exec the kernel tracked as `matched`, for `tracked_for`, means
/// for a process that had the verdict `before`. The kernel matches names on
/// the 15 bytes it keeps of them, and a configured name may be longer: a
/// match on a name that fills those bytes is confirmed on the full name
/// (`full_name`, the target it is configured for). The kernel tracked the
/// process as it was before (Prefix), or, where it was nothing of a
/// target's, for the name's target (Name).
pub(super) fn verdict_at_exec(
    matched: Match,
    fills: bool,
    before: Option<Verdict>,
    tracked_for: TargetId,
    full_name: impl FnOnce() -> Option<TargetId>,
) -> Option<Verdict> {
    let named = match matched {
        // Still what it was, or what it was made.
        Match::Inherited => return before,
        Match::Cgroup => return None,
        Match::Name if !fills => return None,
        Match::Name | Match::Prefix => full_name(),
    };
    match (named, matched) {
        (Some(t), _) if t == tracked_for => None,
        (Some(t), _) => Some(Verdict::Retarget(t)),
        (None, Match::Prefix) => before,
        (None, _) => Some(Verdict::Reject),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(i: u16) -> TargetId {
        TargetId::from(i)
    }

    #[test]
    fn a_lookalike_of_a_long_name_stays_what_it_was() {
        let (a, b) = (t(0), t(1));
        // Tracked for a before: it stays a's, whatever a's verdict was.
        assert_eq!(verdict_at_exec(Match::Prefix, true, None, a, || None), None);
        let rejected = Some(Verdict::Reject);
        assert_eq!(
            verdict_at_exec(Match::Prefix, true, rejected, a, || None),
            rejected
        );
        // Nothing of a target's before: it is no target's.
        assert_eq!(
            verdict_at_exec(Match::Name, true, None, b, || None),
            Some(Verdict::Reject)
        );
    }

    #[test]
    fn a_long_name_in_full_moves_the_process_to_its_target() {
        let (a, b) = (t(0), t(1));
        assert_eq!(
            verdict_at_exec(Match::Prefix, true, None, a, || Some(b)),
            Some(Verdict::Retarget(b))
        );
        assert_eq!(
            verdict_at_exec(Match::Prefix, true, None, b, || Some(b)),
            None
        );
        assert_eq!(
            verdict_at_exec(Match::Name, true, None, b, || Some(b)),
            None
        );
        // A real target's name ends an earlier rejection.
        let rejected = Some(Verdict::Reject);
        assert_eq!(
            verdict_at_exec(Match::Name, true, rejected, b, || Some(b)),
            None
        );
    }

    #[test]
    fn short_names_cgroups_and_inherited_tracking_need_no_confirmation() {
        let named = || -> Option<TargetId> { panic!("nothing to confirm") };
        let (a, b) = (t(0), t(1));
        assert_eq!(verdict_at_exec(Match::Name, false, None, a, named), None);
        assert_eq!(verdict_at_exec(Match::Cgroup, true, None, a, named), None);
        // An exec that changes nothing keeps what was decided before.
        let moved = Some(Verdict::Retarget(b));
        assert_eq!(
            verdict_at_exec(Match::Inherited, true, moved, a, named),
            moved
        );
        assert_eq!(
            verdict_at_exec(Match::Inherited, true, None, a, named),
            None
        );
    }
}
