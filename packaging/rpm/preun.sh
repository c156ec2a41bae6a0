# netio's %preun, following %systemd_preun: on erase ($1 = 0), not on
# upgrade, disable the unit and stop it if systemd is running, then unload
# its pinned programs and their state: nothing of netio counts without it.
if [ "$1" -eq 0 ]; then
    systemctl --no-reload disable netio.service >/dev/null 2>&1 || :
    if [ -d /run/systemd/system ]; then
        systemctl stop netio.service >/dev/null 2>&1 || :
    fi
    /usr/bin/netio unload >/dev/null 2>&1 || :
    rm -rf /sys/fs/bpf/netio /run/netio
fi
