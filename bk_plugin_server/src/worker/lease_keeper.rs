//! Keeps the leases of running steps alive from a thread of its own, with its own runtime and
//! database connections, so that a step which blocks its runtime thread (a synchronous client
//! library, a long computation without `spawn_blocking`) does not let its lease run out and
//! another worker run the same step again. A lease found lost (another worker owns the row)
//! is reported to its step, which is then abandoned.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::store::Store;

enum Command {
    Keep {
        trace_id: String,
        owner: String,
        lost: oneshot::Sender<()>,
    },
    Release {
        trace_id: String,
        owner: String,
    },
}

/// The handle steps use to have their lease kept.
#[derive(Debug, Clone)]
pub(crate) struct LeaseKeeper {
    commands: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Keep { trace_id, .. } => write!(f, "Keep({trace_id})"),
            Self::Release { trace_id, .. } => write!(f, "Release({trace_id})"),
        }
    }
}

/// While alive, the lease of one running step is renewed; dropping it stops that.
#[derive(Debug)]
pub(crate) struct Kept {
    keeper: LeaseKeeper,
    trace_id: String,
    owner: String,
}

impl Drop for Kept {
    fn drop(&mut self) {
        let _ = self.keeper.commands.send(Command::Release {
            trace_id: std::mem::take(&mut self.trace_id),
            owner: std::mem::take(&mut self.owner),
        });
    }
}

impl LeaseKeeper {
    /// Starts the keeper thread: it connects to `database_url` (two connections) and renews
    /// every kept lease for another `lease` each `lease / 3`.
    pub(crate) fn start(database_url: String, lease: Duration) -> Self {
        let (commands, receiver) = mpsc::unbounded_channel();
        let spawned = std::thread::Builder::new()
            .name("bkp-lease-keeper".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start the lease keeper; leases of running steps are not renewed");
                        return;
                    }
                };
                runtime.block_on(keep_loop(database_url, lease, receiver));
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the lease keeper thread; leases of running steps are not renewed");
        }
        Self { commands }
    }

    /// Keeps `owner`'s lease of `trace_id` alive until the returned guard is dropped; the
    /// receiver fires if the lease is found lost.
    pub(crate) fn keep(&self, trace_id: &str, owner: &str) -> (Kept, oneshot::Receiver<()>) {
        let (lost, lost_receiver) = oneshot::channel();
        let _ = self.commands.send(Command::Keep {
            trace_id: trace_id.to_string(),
            owner: owner.to_string(),
            lost,
        });
        let kept = Kept {
            keeper: self.clone(),
            trace_id: trace_id.to_string(),
            owner: owner.to_string(),
        };
        (kept, lost_receiver)
    }
}

async fn connect(database_url: &str) -> Store {
    let mut wait = Duration::from_millis(200);
    loop {
        match Store::connect(database_url, 2).await {
            Ok(store) => return store,
            Err(e) => {
                tracing::warn!(error = %e, "the lease keeper cannot connect to the database; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn keep_loop(
    database_url: String,
    lease: Duration,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let store = Arc::new(connect(&database_url).await);
    let mut kept: HashMap<(String, String), oneshot::Sender<()>> = HashMap::new();
    let mut beat = tokio::time::interval(lease / 3);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Keep { trace_id, owner, lost }) => {
                    kept.insert((trace_id, owner), lost);
                }
                Some(Command::Release { trace_id, owner }) => {
                    kept.remove(&(trace_id, owner));
                }
                None => return,
            },
            _ = beat.tick() => {
                let mut gone = Vec::new();
                for (trace_id, owner) in kept.keys() {
                    match store.heartbeat(trace_id, owner, lease).await {
                        Ok(true) => {}
                        Ok(false) => gone.push((trace_id.clone(), owner.clone())),
                        Err(e) => tracing::warn!(trace_id = %trace_id, error = %e, "heartbeat failed"),
                    }
                }
                for key in gone {
                    tracing::warn!(trace_id = %key.0, "lease lost during the step");
                    if let Some(lost) = kept.remove(&key) {
                        let _ = lost.send(());
                    }
                }
            }
        }
    }
}
