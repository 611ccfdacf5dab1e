//! A daemon's etcd session (a lease kept alive) and its campaign for
//! leadership.
//!
//! The lease asked of the cluster is a second shorter than the configured
//! `lease_ttl` ([`cluster_ttl`]): etcd revokes expired leases in a sweep
//! every half second, so a lease of TTL t is gone up to t + 0.5 s after
//! its last renewal, and only then is another daemon elected. Asking for
//! `lease_ttl` - 1 s keeps a dead leader's replacement within `lease_ttl`
//! whenever it crashes. The lease is kept alive every third of the TTL the
//! cluster granted. Its validity is tracked
//! by the local clock, conservatively: each acknowledged keep-alive extends
//! it to the moment the request was *sent* plus the TTL granted, less a
//! tenth for clock-rate differences, so the local deadline always falls
//! before the cluster lets the lease expire (the cluster counts from when
//! it received the request, and only then can another daemon be elected).
//! When the deadline passes without an acknowledgement, or the cluster
//! says the lease is gone, the session is lost.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::LeaderKey;
use tokio::sync::watch;
use tracing::{debug, error, warn};

use super::etcd::{Counts, Etcd, EtcdError};

/// The local view of a lease's validity.
#[derive(Debug, Default)]
pub struct LeaseClock {
    deadline: Mutex<Option<Instant>>,
}

impl LeaseClock {
    /// A clock valid for `d` from now (for a lease granted by other means).
    pub fn valid_for(d: Duration) -> LeaseClock {
        LeaseClock {
            deadline: Mutex::new(Some(Instant::now() + d)),
        }
    }

    /// Whether the lease is valid now.
    pub fn valid(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() < d)
    }

    /// When it stops being valid unless renewed.
    pub fn deadline(&self) -> Option<Instant> {
        *self
            .deadline
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Resolves once the lease is no longer valid by the local clock
    /// (following renewals as they come).
    pub async fn expired(&self) {
        while let Some(deadline) = self.deadline() {
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    }

    fn renewed(&self, sent: Instant, ttl: Duration) {
        let until = sent + ttl - ttl / 10;
        let mut deadline = self
            .deadline
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if deadline.is_none_or(|d| d < until) {
            *deadline = Some(until);
        }
    }

    fn expire(&self) {
        *self
            .deadline
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// How much sooner than `lease_ttl` the cluster's lease is asked to run
/// out: etcd's expiry sweep (every 500 ms), rounded up to the whole second
/// leases are counted in.
pub const EXPIRY_SWEEP_ALLOWANCE: Duration = Duration::from_secs(1);

/// The TTL asked of the cluster for a configured `lease_ttl` (at least the
/// second etcd counts in): a dead holder's lease is revoked, and another
/// daemon can be elected, within `lease_ttl`.
pub fn cluster_ttl(lease_ttl: Duration) -> Duration {
    lease_ttl
        .saturating_sub(EXPIRY_SWEEP_ALLOWANCE)
        .max(Duration::from_secs(1))
}

/// A granted lease, kept alive in the background until it is lost.
#[derive(Debug)]
pub struct Session {
    /// The lease id.
    pub lease: i64,
    /// Its validity by the local clock.
    pub clock: Arc<LeaseClock>,
    lost: watch::Receiver<Option<String>>,
    keeper: tokio::task::JoinHandle<()>,
}

impl Session {
    /// Obtain a lease for a configured `lease_ttl` (the cluster is asked
    /// for [`cluster_ttl`] of it) and start keeping it alive.
    pub async fn start(etcd: &Arc<Etcd>, lease_ttl: Duration) -> Result<Session, EtcdError> {
        let mut client = etcd.client();
        let seconds = i64::try_from(cluster_ttl(lease_ttl).as_secs()).unwrap_or(i64::MAX);
        let sent = Instant::now();
        let granted = etcd
            .call(
                async move { client.lease_grant(seconds, None).await },
                Some(etcd.timeout()),
            )
            .await?;
        // etcd may grant more than asked (never less than its minimum).
        let ttl = secs(granted.ttl());
        let clock = Arc::new(LeaseClock::default());
        clock.renewed(sent, ttl);
        let (tell, lost) = watch::channel(None);
        let keeper = tokio::spawn(keep_alive(
            Arc::clone(etcd),
            granted.id(),
            ttl,
            Arc::clone(&clock),
            tell,
        ));
        Ok(Session {
            lease: granted.id(),
            clock,
            lost,
            keeper,
        })
    }

    /// Resolves with why, once the session is lost.
    pub async fn lost(&self) -> String {
        let mut lost = self.lost.clone();
        loop {
            if let Some(why) = lost.borrow().clone() {
                return why;
            }
            if lost.changed().await.is_err() {
                return "the lease keeper stopped".into();
            }
        }
    }

    /// Whether the session is lost already.
    pub fn is_lost(&self) -> bool {
        self.lost.borrow().is_some()
    }

    /// Give the lease back (leadership ends at once for the others).
    pub async fn revoke(&self, etcd: &Arc<Etcd>) {
        self.keeper.abort();
        self.clock.expire();
        let mut client = etcd.client();
        let id = self.lease;
        if let Err(e) = etcd
            .call(
                async move { client.lease_revoke(id).await },
                Some(etcd.timeout()),
            )
            .await
        {
            debug!("revoking lease {id:x}: {e}");
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

fn secs(ttl: i64) -> Duration {
    Duration::from_secs(u64::try_from(ttl).unwrap_or(0))
}

/// Renew the lease every third of its granted `ttl` until it is lost; then say why.
async fn keep_alive(
    etcd: Arc<Etcd>,
    lease: i64,
    ttl: Duration,
    clock: Arc<LeaseClock>,
    tell: watch::Sender<Option<String>>,
) {
    let every = ttl / 3;
    loop {
        if !clock.valid() {
            let why = format!("lease {lease:x} was not renewed within its TTL ({ttl:?})");
            error!("{why}: lease lost (a leader steps down now)");
            clock.expire();
            let _ = tell.send(Some(why));
            return;
        }
        let sent = Instant::now();
        let mut client = etcd.client();
        // One keep-alive per stream: a stream broken by a stopped member
        // is simply replaced at the next round.
        let renewed = etcd
            .call(
                async move {
                    let (mut keeper, mut stream) = client.lease_keep_alive(lease).await?;
                    keeper.keep_alive().await?;
                    Ok(stream.message().await?.map(|m| m.ttl()))
                },
                Some(etcd.timeout().min(every)),
            )
            .await;
        match renewed {
            Ok(Some(granted)) if granted > 0 => {
                Counts::add(&etcd.counts().renewed);
                clock.renewed(sent, secs(granted));
            }
            Ok(_) => {
                Counts::add(&etcd.counts().renew_failed);
                let why = format!("the cluster let lease {lease:x} expire");
                error!("{why}: lease lost (a leader steps down now)");
                clock.expire();
                let _ = tell.send(Some(why));
                return;
            }
            Err(e) => {
                Counts::add(&etcd.counts().renew_failed);
                warn!("lease {lease:x} keep-alive: {e}");
            }
        }
        // The next round, or the deadline if that comes first (checked at
        // the top of the loop).
        let Some(deadline) = clock.deadline() else {
            return;
        };
        tokio::time::sleep_until((sent + every).min(deadline).into()).await;
    }
}

/// Campaign for leadership of `election` with `session`'s lease, as
/// `name`; resolves when elected (it waits its turn behind a live leader).
pub async fn campaign(
    etcd: &Arc<Etcd>,
    election: &str,
    name: &str,
    session: &Session,
) -> Result<LeaderKey, EtcdError> {
    let mut client = etcd.client();
    let (election, name, lease) = (election.to_string(), name.to_string(), session.lease);
    let elected = etcd.call(
        async move {
            let mut answer = client.campaign(election, name, lease).await?;
            answer.take_leader().ok_or_else(|| {
                etcd_client::Error::InvalidArgs("campaign answered without a leader key".into())
            })
        },
        None,
    );
    tokio::select! {
        leader = elected => leader,
        why = session.lost() => Err(EtcdError::Request {
            endpoints: etcd.endpoints().to_string(),
            message: format!("lost the session while campaigning: {why}"),
        }),
    }
}

/// The name of the current leader of `election`, if any.
pub async fn leader(etcd: &Arc<Etcd>, election: &str) -> Result<Option<String>, EtcdError> {
    let mut client = etcd.client();
    let election = election.to_string();
    let answer = etcd
        .call(
            async move {
                match client.leader(election).await {
                    Ok(a) => Ok(a
                        .kv()
                        .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())),
                    // "election: no leader" is an answer, not a failure.
                    Err(etcd_client::Error::GRpcStatus(s)) if s.message().contains("no leader") => {
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            },
            Some(etcd.timeout()),
        )
        .await?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_is_asked_for_a_lease_that_its_sweep_revokes_within_lease_ttl() {
        let s = Duration::from_secs;
        assert_eq!(cluster_ttl(s(10)), s(9));
        assert_eq!(cluster_ttl(s(3)), s(2));
        // The worst case: the holder dies just after a renewal; the cluster
        // revokes the lease at most one sweep (0.5 s) after it runs out.
        for ttl in 3..=60 {
            let takeover = cluster_ttl(s(ttl)) + Duration::from_millis(500);
            assert!(takeover <= s(ttl), "lease_ttl {ttl}s: {takeover:?}");
        }
        assert_eq!(cluster_ttl(Duration::ZERO), s(1));
    }
}
