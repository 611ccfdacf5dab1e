//! A runtime on a thread of its own, for clients used from synchronous
//! code (the journal's etcd connection, its archive): a call is spawned on
//! it and waited for, bounded, without needing the caller's runtime.

use std::time::Duration;

/// The runtime; it stops when this is dropped.
#[derive(Debug)]
pub struct Side {
    handle: tokio::runtime::Handle,
    // Dropping this ends the runtime's thread (which drops the runtime
    // outside any async context, where that is allowed).
    _stop: std::sync::mpsc::SyncSender<()>,
}

/// Why a wait ended without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    /// Not within the bound (the request was abandoned; a write may still
    /// have landed).
    Timeout,
    /// The runtime is gone.
    Stopped,
}

impl Side {
    /// Start one, its worker thread named `name`.
    pub fn start(name: &str) -> std::io::Result<Side> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = std::sync::mpsc::sync_channel::<()>(0);
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                // Returns when the sender is dropped.
                let _ = stopped.recv();
                drop(runtime);
            })?;
        Ok(Side {
            handle,
            _stop: stop,
        })
    }

    /// Its handle, to spawn on.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Run `request` on it and wait, blocking this thread, at most
    /// `timeout`.
    pub fn block<T, F>(&self, request: F, timeout: Duration) -> Result<T, Unanswered>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let joined = self.handle.spawn(request);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let abort = joined.abort_handle();
        self.handle.spawn(async move {
            let answer = tokio::time::timeout(timeout, joined).await;
            if answer.is_err() {
                abort.abort();
            }
            let _ = tx.send(answer);
        });
        // Waiting blocks this thread: on a multi-threaded runtime, let its
        // other tasks (timers, the lease keeper) move to another worker first.
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let received = if multi_thread {
            tokio::task::block_in_place(|| rx.recv())
        } else {
            rx.recv()
        };
        match received {
            Ok(Ok(Ok(answer))) => Ok(answer),
            Ok(Err(_)) => Err(Unanswered::Timeout),
            Ok(Ok(Err(_))) | Err(_) => Err(Unanswered::Stopped),
        }
    }
}
