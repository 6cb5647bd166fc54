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
pub(crate) struct BatchError {
    /// What went wrong.
    pub message: String,
    /// The database answered and refused the item itself (too long for a column, a constraint):
    /// writing it again cannot succeed. False for outages, timeouts and lock conflicts.
    pub rejected: bool,
}

impl BatchError {
    /// A failure that may pass when tried again.
    pub(crate) fn transient(message: impl Into<String>) -> Self {
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
pub(crate) struct Batcher<T, R> {
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
    pub(crate) fn spawn<W, F, E>(writers: usize, max_batch: usize, write: W) -> Self
    where
        W: Fn(Vec<T>) -> F + Send + Sync + 'static,
        F: Future<Output = Result<Vec<R>, E>> + Send,
        E: Into<BatchError>,
    {
        Self::spawn_abandoning(writers, max_batch, write, |_| {})
    }

    /// [`Batcher::spawn`], for items that must not outlive their submitter: an item whose
    /// submitter stopped waiting (timed out, or its request was dropped) before a writer took
    /// it is never written; one whose submitter stopped waiting while it was being written
    /// (whatever the outcome, since a failed write may still have committed) is handed to
    /// `abandoned`, which undoes it.
    pub(crate) fn spawn_abandoning<W, F, E, A>(
        writers: usize,
        max_batch: usize,
        write: W,
        abandoned: A,
    ) -> Self
    where
        W: Fn(Vec<T>) -> F + Send + Sync + 'static,
        F: Future<Output = Result<Vec<R>, E>> + Send,
        E: Into<BatchError>,
        A: Fn(Vec<T>) + Send + Sync + 'static,
    {
        let (sender, receiver) = mpsc::channel::<Job<T, R>>(QUEUE);
        let receiver = Arc::new(Mutex::new(receiver));
        let write = Arc::new(write);
        let abandoned = Arc::new(abandoned);
        for _ in 0..writers.max(1) {
            let (receiver, write, abandoned) = (receiver.clone(), write.clone(), abandoned.clone());
            tokio::spawn(async move {
                let mut jobs = Vec::with_capacity(max_batch);
                loop {
                    let taken = receiver.lock().await.recv_many(&mut jobs, max_batch).await;
                    if taken == 0 {
                        return;
                    }
                    jobs.retain(|(_, reply)| !reply.is_closed());
                    if jobs.is_empty() {
                        continue;
                    }
                    let (items, replies): (Vec<T>, Vec<_>) =
                        std::mem::take(&mut jobs).into_iter().unzip();
                    let mut unanswered = Vec::new();
                    if items.len() == 1 {
                        if !answer(replies, write(items.clone()).await) {
                            unanswered.extend(items);
                        }
                    } else {
                        // `.ok()` drops the batch's error at once (it need not be `Send`).
                        let together = write(items.clone()).await.ok();
                        match together {
                            Some(results) => {
                                let replies: Vec<_> = replies.into_iter().map(Some).collect();
                                let mut results = results.into_iter();
                                let count = replies.len();
                                for (item, reply) in items.into_iter().zip(replies) {
                                    let result = results.next().ok_or_else(|| {
                                        BatchError::transient(format!(
                                            "the batch writer returned too few results for {count} items"
                                        ))
                                    });
                                    let result = result.map(|r| vec![r]);
                                    if !answer(reply.into_iter().collect(), result) {
                                        unanswered.push(item);
                                    }
                                }
                            }
                            None => {
                                for (item, reply) in items.into_iter().zip(replies) {
                                    // A submitter that left while the batch failed is not
                                    // written again: its item is undone at once (the failed
                                    // batch may still have committed it).
                                    if reply.is_closed()
                                        || !answer(vec![reply], write(vec![item.clone()]).await)
                                    {
                                        unanswered.push(item);
                                    }
                                }
                            }
                        }
                    }
                    if !unanswered.is_empty() {
                        abandoned(unanswered);
                    }
                }
            });
        }
        Self { sender }
    }

    /// Submits one item and waits until its batch is written.
    pub(crate) async fn submit(&self, item: T) -> Result<R, BatchError> {
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

/// Sends each caller its result; false when some caller no longer waits for it.
fn answer<R, E: Into<BatchError>>(
    replies: Vec<oneshot::Sender<Result<R, BatchError>>>,
    results: Result<Vec<R>, E>,
) -> bool {
    let mut delivered = true;
    match results {
        Ok(results) if results.len() == replies.len() => {
            for (reply, result) in replies.into_iter().zip(results) {
                delivered &= reply.send(Ok(result)).is_ok();
            }
        }
        Ok(results) => {
            let message = format!(
                "the batch writer returned {} results for {} items",
                results.len(),
                replies.len()
            );
            for reply in replies {
                delivered &= reply
                    .send(Err(BatchError::transient(message.clone())))
                    .is_ok();
            }
        }
        Err(e) => {
            let error = e.into();
            for reply in replies {
                delivered &= reply.send(Err(error.clone())).is_ok();
            }
        }
    }
    delivered
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
    async fn an_item_whose_submitter_left_is_skipped_or_handed_back() {
        let written = Arc::new(std::sync::Mutex::new(Vec::new()));
        let undone = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (w, u) = (written.clone(), undone.clone());
        let batcher = Batcher::<u32, ()>::spawn_abandoning(
            1,
            1,
            move |items: Vec<u32>| {
                let w = w.clone();
                async move {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    if let Ok(mut w) = w.lock() {
                        w.extend(items.iter().copied());
                    }
                    Ok::<_, String>(vec![(); items.len()])
                }
            },
            move |items| {
                if let Ok(mut u) = u.lock() {
                    u.extend(items);
                }
            },
        );
        // 1 is being written when its submitter leaves; 2 is still queued when its submitter leaves.
        let quick = std::time::Duration::from_millis(50);
        let (b1, b2) = (batcher.clone(), batcher.clone());
        let first = tokio::spawn(async move { tokio::time::timeout(quick, b1.submit(1)).await });
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let second = tokio::spawn(async move { tokio::time::timeout(quick, b2.submit(2)).await });
        assert!(matches!(first.await, Ok(Err(_))));
        assert!(matches!(second.await, Ok(Err(_))));
        assert_eq!(batcher.submit(3).await, Ok(()));
        assert_eq!(
            written.lock().map(|w| w.clone()).unwrap_or_default(),
            vec![1, 3]
        );
        assert_eq!(
            undone.lock().map(|u| u.clone()).unwrap_or_default(),
            vec![1]
        );
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
