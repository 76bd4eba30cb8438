//! Per-host concurrency limits plus a global bound on requests in flight, so one slow host
//! cannot take every connection: a request needs its host's permit and a global one, and a caller
//! that cannot get its host's permit promptly puts the job back instead of occupying a worker.
//!
//! Must not know HTTP, templates or storage; permits are plain tokio semaphores, no statics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Held while a request is in flight; dropping it frees both slots.
#[derive(Debug)]
pub struct HostPermit {
    _host: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

#[derive(Debug)]
pub struct HostLimits {
    per_host: usize,
    global: Arc<Semaphore>,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl HostLimits {
    pub fn new(per_host: usize, global: usize) -> HostLimits {
        HostLimits {
            per_host: per_host.max(1),
            global: Arc::new(Semaphore::new(global.max(1))),
            hosts: Mutex::new(HashMap::new()),
        }
    }

    fn host(&self, host: &str) -> Arc<Semaphore> {
        let mut hosts = self
            .hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        hosts
            .entry(host.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
            .clone()
    }

    /// Waits up to `wait` for the host's permit, then for a global one; `None` if the host stays
    /// saturated (the caller defers the job). The host permit is taken first so requests waiting
    /// on a slow host never hold global permits.
    pub async fn acquire(&self, host: &str, wait: Duration) -> Option<HostPermit> {
        let semaphore = self.host(host);
        let host_permit = match semaphore.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => tokio::time::timeout(wait, semaphore.acquire_owned())
                .await
                .ok()?
                .ok()?,
        };
        let global = self.global.clone().acquire_owned().await.ok()?;
        Some(HostPermit {
            _host: host_permit,
            _global: global,
        })
    }

    /// Requests now in flight to `host`.
    pub fn in_flight(&self, host: &str) -> usize {
        self.per_host - self.host(host).available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Paused time: the waits below end at once, and nothing else could end them.
    #[tokio::test(start_paused = true)]
    async fn a_saturated_host_does_not_block_others() {
        let limits = HostLimits::new(2, 10);
        let a1 = limits.acquire("slow.example", Duration::ZERO).await;
        let a2 = limits.acquire("slow.example", Duration::ZERO).await;
        assert!(a1.is_some() && a2.is_some());
        assert_eq!(limits.in_flight("slow.example"), 2);
        assert!(
            limits
                .acquire("slow.example", Duration::from_millis(10))
                .await
                .is_none()
        );
        assert!(
            limits
                .acquire("fast.example", Duration::ZERO)
                .await
                .is_some()
        );
        drop(a1);
        assert!(
            limits
                .acquire("slow.example", Duration::ZERO)
                .await
                .is_some()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_global_bound_applies_across_hosts() {
        let limits = HostLimits::new(5, 2);
        let _a = limits.acquire("a", Duration::ZERO).await;
        let _b = limits.acquire("b", Duration::ZERO).await;
        let third = tokio::time::timeout(
            Duration::from_millis(20),
            limits.acquire("c", Duration::ZERO),
        )
        .await;
        assert!(third.is_err(), "waits for a global permit");
    }
}
