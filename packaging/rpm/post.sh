# netio's %post, following the systemd rpm macros (%systemd_post): on first
# install ($1 = 1) the unit is enabled or not as the distribution's preset
# policy says, and not started; an upgrade keeps the admin's choice.
# `preset` works without systemd running; daemon-reload needs it.
if [ "$1" -eq 1 ]; then
    systemctl --no-reload preset netio.service >/dev/null 2>&1 || :
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
# The journal catalog (%journal_catalog_update): netio.catalog is new or changed.
journalctl --update-catalog >/dev/null 2>&1 || :
