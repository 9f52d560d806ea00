//! Hot reload: the plugin directory is watched (inotify, through the
//! `notify` crate); a burst of changes is let settle ([`SETTLE`] without
//! a change, at most [`MAX_WAIT`] after the first), then
//! [`PluginControl::sync_dir`] brings the registry in line with it. A copy
//! still being written fails its hash check and is looked at again on its
//! next change, so a half-copied plugin never serves.

use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::control::PluginControl;

/// Quiet time after the last change before the directory is read.
pub const SETTLE: Duration = Duration::from_millis(100);

/// Longest a burst of changes delays the read.
pub const MAX_WAIT: Duration = Duration::from_millis(500);

/// A running watch; dropping it stops watching.
pub struct DirWatch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DirWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watches `control`'s plugin directory; `None` if it has none, `Err` if
/// it cannot be watched.
pub fn start(control: Arc<PluginControl>) -> Result<Option<DirWatch>, String> {
    let Some(dir) = control.plugins_dir().map(ToOwned::to_owned) else {
        return Ok(None);
    };
    let (changes, mut changed) = mpsc::unbounded_channel::<()>();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if event.kind.is_access() => {}
            Ok(_) => {
                let _ = changes.send(());
            }
            Err(e) => tracing::warn!("watching the plugin directory: {e}"),
        })
        .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    watcher
        .watch(&dir, RecursiveMode::Recursive)
        .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    tracing::info!(dir = %dir.display(), "watching the plugin directory");
    let task = tokio::spawn(async move {
        while changed.recv().await.is_some() {
            let deadline = tokio::time::Instant::now() + MAX_WAIT;
            loop {
                let quiet = tokio::time::sleep(SETTLE);
                tokio::select! {
                    more = changed.recv() => if more.is_none() { return },
                    () = quiet => break,
                }
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
            }
            let n = control.sync_dir().await;
            if n > 0 {
                tracing::info!(changes = n, "plugin directory changed");
            }
        }
    });
    Ok(Some(DirWatch {
        _watcher: watcher,
        task,
    }))
}
