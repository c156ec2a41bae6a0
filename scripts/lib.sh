# Shared by the scripts: installs what building and running netio need on
# Debian 12, idempotently, and mounts tracefs where the kernel has it.

BUILD_PACKAGES="clang llvm gcc make pkg-config libelf-dev zlib1g-dev linux-libc-dev"
# scripts/package: dpkg-parsechangelog and dpkg-shlibdeps (for the .deb's
# Depends), rpm for cargo-generate-rpm's find-requires, the linters, and
# cpio, with which the tests unpack the .rpm.
PACKAGING_PACKAGES="dpkg-dev lintian rpm rpmlint cpio"
# The tests also run a real systemd-journald and read it back with
# journalctl, check the unit with systemd-analyze, trace netio's system
# calls against the unit's filter with strace, drive `netio top` in a real
# terminal with tmux, run real rsyslog collectors
# (TLS with gnutls, certificates made by openssl), and build, lint and
# install the packages, and run MariaDB, Redis and PostgreSQL under their
# benchmark clients (sysbench, redis-benchmark, pgbench).
DATABASE_PACKAGES="mariadb-server mariadb-client sysbench redis-server redis-tools postgresql"
TEST_PACKAGES="systemd strace tmux rsyslog rsyslog-gnutls openssl $PACKAGING_PACKAGES $DATABASE_PACKAGES"

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "$0: run as root: loading eBPF programs needs CAP_BPF and CAP_PERFMON" >&2
        exit 1
    fi
}

install_packages() {
    missing=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        echo "installing:$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    fi
}

# Installs a cargo subcommand at exactly this version, unless it is there.
install_cargo_tool() {
    if ! cargo install --list | grep -qx "$1 v$2:"; then
        echo "installing: $1 $2"
        cargo install --locked --quiet "$1@$2"
    fi
}

# Pinned programs and maps (docs/kernels.md, "Pinned state") need bpffs.
mount_bpffs() {
    if ! grep -qs ' /sys/fs/bpf bpf ' /proc/mounts; then
        mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
    fi
}

mount_tracefs() {
    # Syscall tracepoints (splice and sendfile from a socket) need tracefs.
    if [ ! -d /sys/kernel/tracing/events ] || [ -z "$(ls -A /sys/kernel/tracing 2>/dev/null)" ]; then
        mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
    fi
}
