//! Where a tool call runs. The stdio server has a thread of its own with a
//! current-thread runtime ([`serve_on_own_thread`]); a call starts inline on
//! that thread, so a short call (most are) costs no hand-off between threads,
//! and the first time it has to wait (a guest running past an epoch tick, a
//! host call that blocks, every call slot taken) the rest of it moves to the
//! worker pool. Long calls thus run in parallel on every core and never hold
//! up the protocol for longer than one epoch tick.

use std::future::Future;
use std::task::Poll;

use tokio::runtime::Handle;
use tokio_util::task::AbortOnDropHandle;

/// How calls are run: inline until they wait, then on `pool`; or, without a
/// pool, simply where they are awaited.
#[derive(Clone, Debug, Default)]
pub struct Dispatch {
    pool: Option<Handle>,
}

impl Dispatch {
    /// Calls start inline and move to `pool` when they first wait.
    pub fn inline_then(pool: Handle) -> Self {
        Self { pool: Some(pool) }
    }

    /// Runs `call` to completion. Dropping the returned future (the client
    /// went away, say) drops the call wherever it runs.
    pub async fn run<F>(&self, call: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let Some(pool) = &self.pool else {
            return call.await;
        };
        let mut call = Box::pin(call);
        if let Poll::Ready(output) = futures::poll!(call.as_mut()) {
            return output;
        }
        let mut task = AbortOnDropHandle::new(pool.spawn(call));
        match (&mut task).await {
            Ok(output) => output,
            // The call panicked: panic here too, as it would have inline.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only a shutting-down pool cancels its tasks.
            Err(e) => panic!("the worker pool is shutting down: {e}"),
        }
    }
}

/// Runs `serve` on a new thread with a current-thread runtime, passing it a
/// [`Dispatch`] onto the calling runtime's pool, and returns its result.
pub async fn serve_on_own_thread<S, F>(name: &str, serve: S) -> anyhow::Result<()>
where
    S: FnOnce(Dispatch) -> F + Send + 'static,
    F: Future<Output = anyhow::Result<()>>,
{
    let dispatch = Dispatch::inline_then(Handle::current());
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|runtime| runtime.block_on(serve(dispatch)));
            let _ = done.send(result);
        })?;
    result
        .await
        .map_err(|_| anyhow::anyhow!("the {name} thread ended without a result"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn current_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_call_that_never_waits_stays_on_the_calling_thread() {
        let pool = tokio::runtime::Runtime::new().unwrap();
        let dispatch = Dispatch::inline_then(pool.handle().clone());
        let here = std::thread::current().id();
        let ran_on = current_thread().block_on(dispatch.run(async { std::thread::current().id() }));
        assert_eq!(ran_on, here);
    }

    #[test]
    fn a_call_that_waits_finishes_on_the_pool() {
        let pool = tokio::runtime::Runtime::new().unwrap();
        let dispatch = Dispatch::inline_then(pool.handle().clone());
        let here = std::thread::current().id();
        let (started, finished) = current_thread().block_on(dispatch.run(async {
            let started = std::thread::current().id();
            tokio::task::yield_now().await;
            (started, std::thread::current().id())
        }));
        assert_eq!(started, here);
        assert_ne!(finished, here);
    }

    #[test]
    fn dropping_the_call_stops_it_on_the_pool() {
        let pool = tokio::runtime::Runtime::new().unwrap();
        let dispatch = Dispatch::inline_then(pool.handle().clone());
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        current_thread().block_on(async {
            let call = dispatch.run(async move {
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_secs(60)).await;
                drop(tx);
            });
            // Give the call time to move to the pool, then drop it.
            let _ = tokio::time::timeout(Duration::from_millis(50), call).await;
            // The sender is dropped with the aborted task, not after 60 s.
            let closed = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
            assert_eq!(closed, Ok(None));
        });
    }

    #[test]
    fn a_panicking_call_panics_where_it_is_awaited() {
        let pool = tokio::runtime::Runtime::new().unwrap();
        let dispatch = Dispatch::inline_then(pool.handle().clone());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            current_thread().block_on(dispatch.run(async {
                tokio::task::yield_now().await;
                panic!("guest host bug");
            }))
        }));
        assert!(outcome.is_err());
    }
}
