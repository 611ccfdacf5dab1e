//! The daemon's part in a cluster sharing one journal in etcd: its
//! campaign, what it does when elected and when deposed, the health
//! reports it publishes and, when it leads, the cross-daemon decision.

use std::collections::BTreeMap;
use std::sync::Arc;

use etcd_client::LeaderKey;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use super::Daemon;
use crate::config::EtcdSettings;
use crate::detect::{RegionState, Transition};
use crate::ha::etcd::Etcd;
use crate::ha::lease::{self, Session};
use crate::ha::{self as cluster, Report};
use crate::journal::etcd::{Fence, Store};
use crate::journal::{DecisionKind, Journal};
use crate::notify::Event;
use crate::trigger::decision;

/// What the campaign tells the daemon.
#[derive(Debug)]
pub(super) enum HaEvent {
    /// A new session (lease) to publish reports under.
    Session(Arc<Session>),
    /// Elected: lead with this key.
    Elected(Arc<Session>, LeaderKey),
    /// The session ended: no longer leader (if it was), reports gone.
    Lost(String),
}

/// The leadership this daemon holds.
#[derive(Debug)]
struct Term {
    epoch: i64,
    session: Arc<Session>,
}

/// This daemon as a member of the cluster.
#[derive(Debug)]
pub(super) struct Member {
    settings: EtcdSettings,
    etcd: Arc<Etcd>,
    store: Store,
    /// The unfenced journal followers write through.
    follower: Arc<Journal>,
    session: Option<Arc<Session>>,
    term: Option<Term>,
    /// The leader's name as last read (when another leads).
    leader: Option<String>,
    /// The first failure of each region this daemon sees down.
    incidents: BTreeMap<String, String>,
    campaign: tokio::task::JoinHandle<()>,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.campaign.abort();
    }
}

/// The election's key in etcd.
fn election(etcd: &Etcd) -> String {
    etcd.key("leader")
}

impl Member {
    /// Connect, and start campaigning; events arrive on the returned channel.
    pub(super) fn join(
        settings: &EtcdSettings,
        aws: &crate::config::AwsSettings,
    ) -> Result<(Member, mpsc::Receiver<HaEvent>), super::DaemonError> {
        let etcd = Arc::new(Etcd::connect(settings)?);
        let store = crate::archive::store(
            Arc::clone(&etcd),
            settings,
            aws,
            crate::aws::Credentials::Chain,
        )?;
        let (tell, events) = mpsc::channel(16);
        let campaign = tokio::spawn(campaign(
            Arc::clone(&etcd),
            settings.name.clone(),
            settings.lease_ttl,
            tell,
        ));
        Ok((
            Member {
                settings: settings.clone(),
                follower: Arc::new(Journal::etcd(store.clone())),
                etcd,
                store,
                session: None,
                term: None,
                leader: None,
                incidents: BTreeMap::new(),
                campaign,
            },
            events,
        ))
    }

    /// This member's lease and fencing counts.
    pub(super) fn counts(&self) -> Arc<crate::ha::etcd::Counts> {
        self.etcd.counts()
    }

    /// The journal to use until elected.
    pub(super) fn follower_journal(&self) -> Arc<Journal> {
        Arc::clone(&self.follower)
    }

    /// How often reports are renewed and the cluster's view is read.
    pub(super) fn tick(&self) -> std::time::Duration {
        (self.settings.lease_ttl / 3).min(std::time::Duration::from_secs(1))
    }

    /// Whether this daemon leads: elected, and its lease valid by the
    /// local clock (the moment it runs out the daemon stops deciding,
    /// before the campaign even reports the loss).
    pub(super) fn leads(&self) -> bool {
        self.term.as_ref().is_some_and(|t| t.session.clock.valid())
    }
}

/// Hold a session and campaign with it, for as long as the daemon runs:
/// after a lost session, start again.
async fn campaign(
    etcd: Arc<Etcd>,
    name: String,
    ttl: std::time::Duration,
    tell: mpsc::Sender<HaEvent>,
) {
    let retry = (ttl / 3).min(std::time::Duration::from_secs(1));
    let election = election(&etcd);
    loop {
        let session = match Session::start(&etcd, ttl).await {
            Ok(s) => Arc::new(s),
            Err(e) => {
                warn!(error = %e, "cannot obtain a lease from etcd");
                tokio::time::sleep(retry).await;
                continue;
            }
        };
        if tell
            .send(HaEvent::Session(Arc::clone(&session)))
            .await
            .is_err()
        {
            return;
        }
        let why = loop {
            match lease::campaign(&etcd, &election, &name, &session).await {
                Ok(key) => {
                    if tell
                        .send(HaEvent::Elected(Arc::clone(&session), key))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    break session.lost().await;
                }
                Err(e) if session.is_lost() => break e.to_string(),
                Err(e) => {
                    warn!(error = %e, "campaign for leadership");
                    tokio::time::sleep(retry).await;
                }
            }
        };
        if tell.send(HaEvent::Lost(why)).await.is_err() {
            return;
        }
    }
}

impl Daemon {
    /// Whether this daemon decides and executes: always alone, only the
    /// leader in a cluster.
    pub(super) fn executes(&self) -> bool {
        self.ha.as_ref().is_none_or(Member::leads)
    }

    /// The lease clock of the leadership held, if any.
    pub(super) fn lease_clock(&self) -> Option<Arc<crate::ha::lease::LeaseClock>> {
        let term = self.ha.as_ref()?.term.as_ref()?;
        Some(Arc::clone(&term.session.clock))
    }

    /// The leader's name, when this daemon knows it.
    pub(super) fn leader_name(&self) -> Option<String> {
        let m = self.ha.as_ref()?;
        if m.leads() {
            Some(m.settings.name.clone())
        } else {
            m.leader.clone()
        }
    }

    /// An event of the campaign.
    pub(super) async fn on_ha(&mut self, event: HaEvent) {
        match event {
            HaEvent::Session(session) => {
                if let Some(m) = &mut self.ha {
                    info!(lease = format!("{:x}", session.lease), "etcd session open");
                    m.session = Some(session);
                }
                self.publish_reports().await;
            }
            HaEvent::Elected(session, key) => self.on_elected(session, &key),
            HaEvent::Lost(why) => self.on_lost(&why),
        }
    }

    fn on_elected(&mut self, session: Arc<Session>, key: &LeaderKey) {
        let Some(m) = &mut self.ha else { return };
        let epoch = key.rev();
        let fence = Fence {
            key: String::from_utf8_lossy(key.key()).into_owned(),
            epoch,
            holder: m.settings.name.clone(),
            lease: Arc::clone(&session.clock),
        };
        m.term = Some(Term { epoch, session });
        self.journal = Arc::new(Journal::etcd(m.store.fenced(fence)));
        // A fresh drain for this term's runs.
        self.drain = watch::channel(false).0;
        self.metrics.set_leader(true);
        self.metrics.count_leadership("elected");
        warn!(
            epoch,
            "elected leader: this daemon now decides and executes"
        );
        let d = decision(
            None,
            DecisionKind::Elected,
            None,
            &m.settings.name,
            Some(serde_json::json!({ "epoch": epoch, "place": m.settings.place })),
        );
        if let Err(e) = self.journal.decide(&d) {
            error!(error = %e, "cannot journal the election");
        }
        // Runs the previous leader left unfinished, observed before acted on.
        if let Err(e) = self.resume_runs() {
            error!(error = %e, "cannot read the shared journal's unfinished runs");
        }
        if let Err(e) = self.sweep() {
            error!(error = %e, "cannot sweep drills");
        }
        // Outages are decided afresh from the cluster's reports.
        self.outages.clear();
    }

    /// The session ended: stop every step now (the lease is no longer
    /// valid by the local clock, so none may go on), and campaign again.
    fn on_lost(&mut self, why: &str) {
        let Some(m) = &mut self.ha else { return };
        m.session = None;
        let Some(term) = m.term.take() else {
            warn!("etcd session lost: {why}");
            return;
        };
        self.metrics.count_leadership("lost");
        error!(
            epoch = term.epoch,
            "stepping down: {why}; every running step is stopped now and the next leader resumes the runs"
        );
        let _ = self.drain.send(true);
        for (id, task) in self.runs.drain() {
            task.handle.abort();
            warn!(run_id = %id, "run left to the next leader");
        }
        self.journal = m.follower_journal();
        self.metrics.set_leader(false);
        self.outages.clear();
    }

    /// This daemon's own view of a region changed: remember its incident,
    /// and publish.
    pub(super) fn local_change(&mut self, region: &str, change: &Transition<String>) {
        let Some(m) = &mut self.ha else { return };
        if let Some(incident) = &change.declared {
            warn!(region, incident_start = %incident, "this daemon sees the region down; the leader decides with the others' views");
            m.incidents.insert(region.to_string(), incident.clone());
        } else {
            info!(region, from = ?change.from, to = ?change.to, "region health changed (this daemon's view)");
            if change.to == RegionState::Healthy {
                m.incidents.remove(region);
            }
        }
    }

    /// This daemon's report on each region.
    fn reports(&self) -> Vec<Report> {
        let Some(m) = &self.ha else { return Vec::new() };
        let at = crate::engine::now();
        self.detectors
            .iter()
            .map(|(region, d)| {
                // A zone's probes are some of its region's.
                let watch = self.scopes.get(region);
                let specs = watch
                    .and_then(|w| self.config.regions.get(&w.region))
                    .map(|r| r.probes.as_slice())
                    .unwrap_or_default();
                let probes: Vec<&crate::config::probe::ProbeSpec> = watch
                    .map(|w| w.probes.iter().filter_map(|&i| specs.get(i)).collect())
                    .unwrap_or_default();
                Report {
                    daemon: m.settings.name.clone(),
                    place: m.settings.place.clone(),
                    region: region.clone(),
                    state: serde_json::to_value(d.state())
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    incident_start: (d.state() == RegionState::Down)
                        .then(|| m.incidents.get(region).cloned())
                        .flatten(),
                    at: at.clone(),
                    failing: d
                        .failing()
                        .iter()
                        .filter_map(|&i| probes.get(i).map(|p| p.name.clone()))
                        .collect(),
                }
            })
            .collect()
    }

    /// Publish this daemon's reports under its lease.
    async fn publish_reports(&self) {
        let Some(m) = &self.ha else { return };
        let Some(session) = &m.session else { return };
        if !session.clock.valid() {
            return;
        }
        for report in self.reports() {
            let key = format!("health/{}/{}", report.region, report.daemon);
            let Ok(value) = serde_json::to_vec(&report) else {
                continue;
            };
            if let Err(e) = m.store.put_leased(&key, value, session.lease).await {
                warn!(region = %report.region, error = %e, "cannot publish this daemon's view");
                return;
            }
        }
    }

    /// Every tick: publish; and, when leading, decide on the cluster's view.
    pub(super) async fn ha_tick(&mut self) {
        self.publish_reports().await;
        if !self.executes() {
            if let Some(m) = &mut self.ha {
                m.leader = lease::leader(&m.etcd, &election(&m.etcd))
                    .await
                    .ok()
                    .flatten();
            }
            return;
        }
        let Some(m) = &self.ha else { return };
        let reports: Vec<Report> = match m.store.read_prefix("health").await {
            Ok(values) => values
                .into_iter()
                .filter_map(|v| serde_json::from_value(v).ok())
                .collect(),
            Err(e) => {
                warn!(error = %e, "cannot read the daemons' views");
                return;
            }
        };
        let quorum = m.settings.quorum_places;
        let regions: Vec<String> = self.detectors.keys().cloned().collect();
        for region in regions {
            let agreed = cluster::agreement(&reports, &region, quorum);
            // A zone's outage within a region declared down is the
            // region's to answer.
            let within_down = self
                .scopes
                .get(&region)
                .is_some_and(|s| s.zone.is_some() && self.outages.contains_key(&s.region));
            match (agreed, self.outages.contains_key(&region)) {
                (Some(_), false) if within_down => {}
                (Some(agreed), false) => {
                    let at = crate::engine::now();
                    let mut evidence =
                        self.evidence(&region, agreed.incident_start.as_deref(), &at);
                    evidence["places"] = serde_json::json!(agreed.places);
                    evidence["daemons"] = serde_json::json!(
                        reports
                            .iter()
                            .filter(|r| r.region == region)
                            .collect::<Vec<_>>()
                    );
                    warn!(
                        region = %region,
                        places = ?agreed.places,
                        incident_start = ?agreed.incident_start,
                        "outage declared: daemons in {} places agree",
                        agreed.places.len()
                    );
                    self.notifier.send(Event {
                        event: "outage-declared".into(),
                        at: at.clone(),
                        binding: None,
                        region: Some(region.clone()),
                        run: None,
                        summary: format!(
                            "{region} declared down by daemons in {}",
                            agreed.places.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                        detail: Some(evidence.clone()),
                    });
                    self.outages.insert(region.clone(), evidence.clone());
                    self.on_outage(&region, &evidence);
                }
                (None, true) => {
                    let healthy = reports
                        .iter()
                        .filter(|r| r.region == region)
                        .all(|r| r.state == "healthy");
                    if healthy {
                        self.outages.remove(&region);
                        self.on_recovered(&region);
                    }
                }
                _ => {}
            }
        }
    }

    /// Leave the cluster: give the lease back so another daemon leads at once.
    pub(super) async fn leave(&mut self) {
        let Some(mut m) = self.ha.take() else { return };
        m.campaign.abort();
        m.term = None;
        if let Some(session) = m.session.take() {
            session.revoke(&m.etcd).await;
            info!("lease given back: another daemon can lead now");
        }
    }

    /// `status`'s part about the cluster.
    pub(super) fn ha_status(&self) -> Option<serde_json::Value> {
        let m = self.ha.as_ref()?;
        let leader = self.leader_name();
        Some(serde_json::json!({
            "name": m.settings.name,
            "place": m.settings.place,
            "role": if m.leads() { "leader" } else { "follower" },
            "epoch": m.term.as_ref().map(|t| t.epoch),
            "leader": leader,
            "lease_ttl_s": m.settings.lease_ttl.as_secs_f64(),
            "quorum_places": m.settings.quorum_places,
            "endpoints": m.settings.endpoints,
        }))
    }
}
