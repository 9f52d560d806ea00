//! The `progress` capability: a guest's progress reports for the current
//! call, handed to whoever serves the call (the MCP server turns them into
//! `notifications/progress`). The channel is bounded and never blocks the
//! guest: when the agent reads slower than the plugin reports, reports are
//! dropped (progress is advisory; the call's result is what counts).
//! Denied, or when the agent did not ask for progress, reports are dropped.

use tokio::sync::mpsc;
use wasmtime::component::Linker;

use super::{CallCapability, CallData, CallScope, Capability, HostStores, PluginScope};
use crate::wit::toolmesh::plugin::progress;

/// Longest progress message kept; longer ones are cut.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// How many reports may wait to be sent.
pub const CAPACITY: usize = 64;

/// One progress report.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressReport {
    /// Units of work done so far.
    pub done: f64,
    /// Units of work in all, if known.
    pub total: Option<f64>,
    /// What is happening.
    pub message: Option<String>,
}

/// The sending end, held by a call's store.
#[derive(Debug, Clone)]
pub struct ProgressSink {
    tx: mpsc::Sender<ProgressReport>,
}

/// Creates a sink and the stream of reports it feeds.
pub fn channel() -> (ProgressSink, mpsc::Receiver<ProgressReport>) {
    let (tx, rx) = mpsc::channel(CAPACITY);
    (ProgressSink { tx }, rx)
}

impl ProgressSink {
    /// Queues `report`; false if it was dropped (the queue is full, or no one
    /// listens any more). Non-finite numbers are dropped too.
    pub fn report(&self, mut report: ProgressReport) -> bool {
        if !report.done.is_finite() || report.total.is_some_and(|t| !t.is_finite()) {
            return false;
        }
        if let Some(message) = &mut report.message
            && message.len() > MAX_MESSAGE_BYTES
        {
            *message = crate::text::truncate(message, MAX_MESSAGE_BYTES).into_owned();
        }
        self.tx.try_send(report).is_ok()
    }
}

/// A call's progress: where reports go, if the plugin may report and the
/// agent asked.
pub struct ProgressCtx {
    sink: Option<ProgressSink>,
}

impl CallCapability for ProgressCtx {
    fn add_to_linker<T: CallData>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut Self,
    ) -> wasmtime::Result<()> {
        link_v0_1_and_v0_2!(progress, linker, get)
    }

    fn for_call(
        _: &HostStores,
        plugin: &PluginScope<'_>,
        call: &CallScope,
    ) -> anyhow::Result<Self> {
        let granted = plugin.access.has(Capability::Progress);
        Ok(Self {
            sink: call.progress.clone().filter(|_| granted),
        })
    }
}

impl progress::Host for ProgressCtx {
    fn report(&mut self, done: f64, total: Option<f64>, message: Option<String>) {
        if let Some(sink) = &self.sink {
            sink.report(ProgressReport {
                done,
                total,
                message,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_flow_until_full_and_bad_numbers_are_dropped() {
        let (sink, mut rx) = channel();
        let report = |done: f64| ProgressReport {
            done,
            total: Some(10.0),
            message: Some("x".repeat(5000)),
        };
        assert!(!sink.report(report(f64::NAN)));
        for i in 0..CAPACITY {
            assert!(sink.report(report(i as f64)));
        }
        assert!(!sink.report(report(99.0)), "full: dropped, not blocked");
        let first = rx.try_recv().unwrap();
        assert_eq!(first.done, 0.0);
        assert!(first.message.unwrap().len() < 1100);
        drop(rx);
        assert!(!sink.report(report(1.0)));
    }
}
