//! `netio unload`: removes the pinned programs, links and maps and the state
//! beside them, so that nothing of netio counts any more (docs/kernels.md,
//! "Pinned state"). A running netio's own links count until it exits.

use netio_probes::PinDir;

use crate::error::ExitError;
use crate::state;

pub fn unload(dir: Option<PinDir>) -> Result<(), ExitError> {
    let Some(dir) = dir else {
        say!("netio: pinning is turned off (NETIO_PIN_DIR is empty): nothing to unload");
        return Ok(());
    };
    let links = dir.links();
    let removed = dir
        .remove()
        .map_err(|e| ExitError::Failed(format!("cannot remove {}: {e}", dir.path().display())))?;
    let path = state::path_for(&dir);
    let _ = std::fs::remove_file(&path);
    if let Some(parent) = path.parent() {
        let _ = std::fs::remove_dir(parent);
    }
    netio_probes::remove_stale_kretprobes();
    if removed {
        say!(
            "netio: removed {} ({links} pinned link{}): its programs stopped counting",
            dir.path().display(),
            if links == 1 { "" } else { "s" }
        );
    } else {
        say!("netio: nothing pinned at {}", dir.path().display());
    }
    Ok(())
}
