# netio's %postun, following %systemd_postun_with_restart: after an upgrade
# ($1 >= 1) restart the service if it was running, with the new binary.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart netio.service >/dev/null 2>&1 || :
    fi
fi
# The catalog without netio's entries after an erase, or with the new ones.
journalctl --update-catalog >/dev/null 2>&1 || :
# A modified netio.conf is kept as netio.conf.rpmsave: the directory then
# stays, else it goes with the package.
if [ "$1" -eq 0 ]; then
    rmdir /etc/netio 2>/dev/null || :
fi
