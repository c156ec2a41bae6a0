# Shared by the scripts: installs what building and running netio need on
# Debian 12, idempotently, and mounts tracefs where the kernel has it.

BUILD_PACKAGES="clang llvm gcc make pkg-config libelf-dev zlib1g-dev linux-libc-dev"
# The tests also run a real systemd-journald and read it back with journalctl,
# and real rsyslog collectors (TLS with gnutls, certificates made by openssl).
TEST_PACKAGES="systemd rsyslog rsyslog-gnutls openssl"

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

mount_tracefs() {
    # Syscall tracepoints (splice and sendfile from a socket) need tracefs.
    if [ ! -d /sys/kernel/tracing/events ] || [ -z "$(ls -A /sys/kernel/tracing 2>/dev/null)" ]; then
        mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
    fi
}
