//! A settlement that always reaches its outcome, run in the request's own task.
//!
//! Once `/settle` may have been called, the settlement must be carried to its answer and its
//! record even if the client goes away and the request's future is dropped. Spawning it as a task
//! of its own does that, but moves every payment to another worker and back (a cross-thread
//! wake-up each way, the most costly part of a paid request's scheduling). [`Finishing`] instead
//! polls the settlement in the request's task and, only if it is dropped before the settlement
//! is done, hands what is left of it to the runtime to finish.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

/// `future`, polled where it is awaited, and finished by the runtime if dropped before it is
/// done. A panic inside it is caught and answered as an error, as a failed task's would be.
pub(crate) struct Finishing<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    future: Option<Pin<Box<F>>>,
}

impl<F> Finishing<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    pub(crate) fn new(future: F) -> Self {
        Finishing {
            future: Some(Box::pin(future)),
        }
    }
}

impl<F> Future for Finishing<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(future) = self.future.as_mut() else {
            // Polled again after its output was taken: it has nothing more to give.
            return Poll::Pending;
        };
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => {
                self.future = None;
                Poll::Ready(Ok(output))
            }
            Err(panic) => {
                self.future = None;
                Poll::Ready(Err(panic))
            }
        }
    }
}

impl<F> Drop for Finishing<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        if let Some(rest) = self.future.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(rest);
        }
    }
}

/// What a caught panic said, for the log.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn the_output_comes_back_where_it_is_awaited() {
        assert_eq!(Finishing::new(async { 7 }).await.ok(), Some(7));
    }

    #[tokio::test]
    async fn a_dropped_settlement_is_finished_by_the_runtime() {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let settlement = Finishing::new(async move {
            let _ = started_tx.send(());
            tokio::time::sleep(Duration::from_millis(20)).await;
            flag.store(true, Ordering::SeqCst);
        });
        // The request's future is dropped while the settlement waits on its answer.
        let request = tokio::spawn(settlement);
        started.await.expect("the settlement started");
        request.abort();
        assert!(request.await.is_err(), "the request was dropped");
        assert!(!done.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            done.load(Ordering::SeqCst),
            "the runtime finished the settlement"
        );
    }

    #[tokio::test]
    async fn a_panic_is_an_error_not_an_unwind() {
        let outcome = Finishing::new(async {
            if std::hint::black_box(true) {
                panic!("settlement bug");
            }
        })
        .await;
        let panic = outcome.expect_err("caught");
        assert_eq!(panic_message(panic.as_ref()), "settlement bug");
    }
}
