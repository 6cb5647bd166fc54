//! Group commit: callers on many tasks submit one item each; a writer task takes whatever has
//! queued up and writes it in one statement or transaction, then answers every caller. Under
//! load this turns N commits (N fsyncs) into one; when idle it adds no delay, because the
//! writer takes a batch as soon as the first item arrives. Several writers may run at once
//! (each taking its own batch) where the database takes concurrent writers well.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

const QUEUE: usize = 8_192;

/// Why a submitted item was not written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BatchError {
    /// What went wrong.
    pub message: String,
    /// The database answered and refused the item itself (too long for a column, a constraint):
    /// writing it again cannot succeed. False for outages, timeouts and lock conflicts.
    pub rejected: bool,
}

impl BatchError {
    /// A failure that may pass when tried again.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            rejected: false,
        }
    }
}

impl From<String> for BatchError {
    fn from(message: String) -> Self {
        Self::transient(message)
    }
}

type Job<T, R> = (T, oneshot::Sender<Result<R, BatchError>>);

/// The submitting side of a batch writer.
#[derive(Debug)]
pub struct Batcher<T, R> {
    sender: mpsc::Sender<Job<T, R>>,
}

impl<T, R> Clone for Batcher<T, R> {
    fn clone(&self) -> Self {
        Self {
            sender: self.sender.clone(),
        }
    }
}

impl<T: Clone + Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// Spawns `writers` writer tasks: each takes up to `max_batch` queued items at a time and
    /// hands them to `write`, which returns one result per item, in order. When a batch of
    /// several fails, each item is written again on its own, so that one bad item (too large,
    /// say) fails alone instead of failing its neighbours.
    pub fn spawn<W, F, E>(writers: usize, max_batch: usize, write: W) -> Self
    where
        W: Fn(Vec<T>) -> F + Send + Sync + 'static,
        F: Future<Output = Result<Vec<R>, E>> + Send,
        E: Into<BatchError>,
    {
        let (sender, receiver) = mpsc::channel::<Job<T, R>>(QUEUE);
        let receiver = Arc::new(Mutex::new(receiver));
        let write = Arc::new(write);
        for _ in 0..writers.max(1) {
            let (receiver, write) = (receiver.clone(), write.clone());
            tokio::spawn(async move {
                let mut jobs = Vec::with_capacity(max_batch);
                loop {
                    let taken = receiver.lock().await.recv_many(&mut jobs, max_batch).await;
                    if taken == 0 {
                        return;
                    }
                    let (items, replies): (Vec<T>, Vec<_>) =
                        std::mem::take(&mut jobs).into_iter().unzip();
                    if items.len() == 1 {
                        answer(replies, write(items).await);
                        continue;
                    }
                    // `.ok()` drops the batch's error at once (it need not be `Send`).
                    let together = write(items.clone()).await.ok();
                    match together {
                        Some(results) => answer(replies, Ok::<_, BatchError>(results)),
                        None => {
                            for (item, reply) in items.into_iter().zip(replies) {
                                answer(vec![reply], write(vec![item]).await);
                            }
                        }
                    }
                }
            });
        }
        Self { sender }
    }

    /// Submits one item and waits until its batch is written.
    pub async fn submit(&self, item: T) -> Result<R, BatchError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send((item, reply))
            .await
            .map_err(|_| BatchError::transient("the batch writer has stopped"))?;
        answer
            .await
            .map_err(|_| BatchError::transient("the batch writer has stopped"))?
    }
}

fn answer<R, E: Into<BatchError>>(
    replies: Vec<oneshot::Sender<Result<R, BatchError>>>,
    results: Result<Vec<R>, E>,
) {
    match results {
        Ok(results) if results.len() == replies.len() => {
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(Ok(result));
            }
        }
        Ok(results) => {
            let message = format!(
                "the batch writer returned {} results for {} items",
                results.len(),
                replies.len()
            );
            for reply in replies {
                let _ = reply.send(Err(BatchError::transient(message.clone())));
            }
        }
        Err(e) => {
            let error = e.into();
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_submissions_are_written_in_fewer_batches_and_each_gets_its_result() {
        let batches = Arc::new(AtomicUsize::new(0));
        let counter = batches.clone();
        let batcher = Batcher::<u32, u32>::spawn(2, 64, move |items: Vec<u32>| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                Ok::<_, String>(items.into_iter().map(|i| i * 2).collect())
            }
        });
        let tasks: Vec<_> = (0..200u32)
            .map(|i| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.submit(i).await })
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            let doubled = task.await.ok().and_then(Result::ok);
            assert_eq!(doubled, u32::try_from(i).ok().map(|i| i * 2));
        }
        assert!(batches.load(Ordering::SeqCst) < 200);
    }

    #[tokio::test]
    async fn a_failed_item_fails_alone_and_its_neighbours_are_written() {
        let batcher = Batcher::<u32, u32>::spawn(1, 64, |items: Vec<u32>| async move {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            if items.contains(&13) {
                Err(format!(
                    "cannot write {} items with 13 among them",
                    items.len()
                ))
            } else {
                Ok(items)
            }
        });
        let tasks: Vec<_> = (0..40u32)
            .map(|i| {
                let batcher = batcher.clone();
                tokio::spawn(async move { (i, batcher.submit(i).await) })
            })
            .collect();
        for task in tasks {
            let (i, result) = task
                .await
                .unwrap_or((0, Err(BatchError::transient("join"))));
            if i == 13 {
                assert_eq!(
                    result,
                    Err(BatchError::transient(
                        "cannot write 1 items with 13 among them"
                    ))
                );
            } else {
                assert_eq!(result, Ok(i));
            }
        }
    }
}
