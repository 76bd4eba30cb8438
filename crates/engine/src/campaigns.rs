//! The campaign engine: for each trigger, every active action-based campaign it fires checks the
//! audience against the profile as it is now, re-eligibility (a send counts unless its job ended
//! aborted or failed) and the delivery speed, then enqueues the webhook job, in the feed pass's
//! transaction. Also stores campaigns and performs API-triggered sends.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use leadwire_campaigns::campaign::Compiled;
use leadwire_campaigns::{CampaignSpec, CampaignStatus, RateLimiter, TriggerSpec, eligible};
use leadwire_profiles::{Identifier, Profile, Trigger};
use leadwire_store::{Consumer, NewJob, Store, TriggerRecord, Tx};
use leadwire_webhooks::RenderProperties;
use serde_json::{Value as Json, json};

use crate::runner::{EngineError, FeedConsumer, PassReport};
use crate::specs::SpecCache;
use crate::{dispatch_id, user_identifier};

/// A stored campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignRecord {
    pub id: String,
    pub spec: CampaignSpec,
    /// When it was last saved (Braze's `last_edited`).
    pub last_edited: DateTime<Utc>,
}

impl CampaignRecord {
    pub fn to_json(&self) -> Json {
        let mut v = serde_json::to_value(&self.spec).unwrap_or(Json::Null);
        if let Json::Object(m) = &mut v {
            m.insert("campaign_id".into(), Json::String(self.id.clone()));
        }
        v
    }
}

/// A recipient of an API-triggered send.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub user: Identifier,
    pub trigger_properties: Option<Json>,
}

/// The campaign engine: a feed consumer plus the campaign management and API-triggered sends.
pub struct CampaignEngine {
    store: Store,
    /// The active action-based campaigns, compiled.
    compiled: SpecCache<Compiled>,
}

fn system_time(t: DateTime<Utc>) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(t.timestamp_millis().max(0) as u64)
}

impl CampaignEngine {
    pub fn new(store: Store) -> CampaignEngine {
        CampaignEngine {
            store,
            compiled: SpecCache::default(),
        }
    }

    /// Creates or replaces (by name) a campaign after checking it compiles and its template
    /// exists.
    pub async fn save_campaign(&self, spec: CampaignSpec) -> Result<CampaignRecord, EngineError> {
        spec.compile()
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let text = serde_json::to_string(&spec).map_err(|e| EngineError::Invalid(e.to_string()))?;
        let (name, template) = (spec.name.clone(), spec.template.clone());
        let id = self
            .store
            .transact(move |tx| {
                template_id(tx, &template)?;
                Ok::<_, EngineError>((tx.save_campaign(&name, &text)?, tx.now()))
            })
            .await?;
        let (id, last_edited) = id;
        Ok(CampaignRecord {
            id,
            spec,
            last_edited,
        })
    }

    pub async fn campaigns(&self) -> Result<Vec<CampaignRecord>, EngineError> {
        self.store.read(load_campaigns).await
    }

    pub async fn campaign(&self, id_or_name: &str) -> Result<CampaignRecord, EngineError> {
        self.campaigns()
            .await?
            .into_iter()
            .find(|c| c.id == id_or_name || c.spec.name == id_or_name)
            .ok_or_else(|| EngineError::NotFound {
                what: "campaign",
                id: id_or_name.to_string(),
            })
    }

    pub async fn set_status(
        &self,
        id_or_name: &str,
        status: CampaignStatus,
    ) -> Result<CampaignRecord, EngineError> {
        let mut record = self.campaign(id_or_name).await?;
        record.spec.status = status;
        self.save_campaign(record.spec).await
    }

    /// `POST /campaigns/trigger/send` after the caller applied any `attributes`: enqueues one
    /// send per recipient (or every eligible user for a broadcast) in one transaction and
    /// returns the dispatch id and the recipients that matched nobody.
    pub async fn trigger_send(
        &self,
        campaign_id: &str,
        recipients: Vec<Recipient>,
        broadcast: bool,
        trigger_properties: Option<Json>,
    ) -> Result<(String, Vec<Identifier>), EngineError> {
        let campaign = self.campaign(campaign_id).await?;
        if campaign.spec.trigger != TriggerSpec::ApiTriggered {
            return Err(EngineError::Invalid(format!(
                "campaign '{}' is not API-triggered",
                campaign.spec.name
            )));
        }
        if campaign.spec.status != CampaignStatus::Active {
            return Err(EngineError::Invalid(format!(
                "campaign '{}' is not active (it is {:?})",
                campaign.spec.name, campaign.spec.status
            )));
        }
        let compiled = campaign
            .spec
            .compile()
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let dispatch = dispatch_id();
        let dispatch_for_tx = dispatch.clone();
        let missing = self
            .store
            .transact(move |tx| {
                // The API caller hears about a missing template; the feed only logs it.
                template_id(tx, &campaign.spec.template)?;
                let now = tx.now();
                let mut missing = Vec::new();
                let mut targets: Vec<(Profile, Option<Json>)> = Vec::new();
                if broadcast {
                    for id in tx.braze_ids()? {
                        if let Some(p) = tx.profile_by_braze_id(&id)? {
                            targets.push((p, None));
                        }
                    }
                } else {
                    for r in recipients {
                        match tx.profile(&r.user)? {
                            Some(p) => targets.push((p, r.trigger_properties)),
                            None => missing.push(r.user),
                        }
                    }
                }
                let mut pace = Pace::load(tx, &campaign.id)?;
                for (profile, own) in targets {
                    if !compiled
                        .audience
                        .as_ref()
                        .is_none_or(|f| f.matches_profile(&profile))
                    {
                        continue;
                    }
                    if !eligible(
                        tx.last_received(&campaign.id, &profile.braze_id)?,
                        campaign.spec.reeligibility_seconds,
                        now,
                    ) {
                        continue;
                    }
                    // Per-recipient trigger properties override the request's keys (Braze).
                    let mut props = trigger_properties.clone().unwrap_or_else(|| json!({}));
                    if let (Json::Object(base), Some(Json::Object(extra))) = (&mut props, own) {
                        base.extend(extra);
                    }
                    let slot = pace.next_slot(campaign.spec.rate_limit_per_minute, now);
                    let properties = RenderProperties {
                        api_trigger_properties: Some(props),
                        campaign: Some(json!({"name": campaign.spec.name})),
                        ..RenderProperties::default()
                    };
                    send(
                        tx,
                        &campaign.id,
                        &campaign.spec.template,
                        &profile,
                        properties,
                        slot,
                        None,
                        Some(&dispatch_for_tx),
                        now,
                    )?;
                }
                pace.save(tx)?;
                Ok::<_, EngineError>(missing)
            })
            .await?;
        Ok((dispatch, missing))
    }
}

/// A campaign's delivery-speed state, read and saved in the transaction that sends, so the pace
/// holds across restarts.
struct Pace {
    campaign_id: String,
    limiter: RateLimiter,
    changed: bool,
}

impl Pace {
    fn load(tx: &mut Tx<'_>, campaign_id: &str) -> Result<Pace, EngineError> {
        let limiter = match tx.campaign_pace(campaign_id)? {
            Some(text) => serde_json::from_str(&text).unwrap_or_default(),
            None => RateLimiter::default(),
        };
        Ok(Pace {
            campaign_id: campaign_id.to_owned(),
            limiter,
            changed: false,
        })
    }

    fn next_slot(&mut self, per_minute: Option<u32>, now: DateTime<Utc>) -> DateTime<Utc> {
        if per_minute.is_some() {
            self.changed = true;
        }
        self.limiter.next_slot(per_minute, now)
    }

    fn save(&self, tx: &mut Tx<'_>) -> Result<(), EngineError> {
        if self.changed {
            let text = serde_json::to_string(&self.limiter)
                .map_err(|e| EngineError::Corrupt(e.to_string()))?;
            tx.set_campaign_pace(&self.campaign_id, &text)?;
        }
        Ok(())
    }
}

impl FeedConsumer for CampaignEngine {
    fn consumer(&self) -> Consumer {
        Consumer::Campaigns
    }

    fn pass(
        &self,
        tx: &mut Tx<'_>,
        triggers: &[TriggerRecord],
        now: DateTime<Utc>,
    ) -> Result<PassReport, EngineError> {
        let mut report = PassReport::default();
        if triggers.is_empty() {
            return Ok(report);
        }
        let campaigns: Vec<(String, Arc<Compiled>)> = tx
            .campaigns()?
            .into_iter()
            .filter_map(|row| {
                let compiled = self.compiled.get(&row.id, &row.spec, |text| {
                    let spec: CampaignSpec = serde_json::from_str(text).ok()?;
                    (spec.status == CampaignStatus::Active
                        && spec.trigger != TriggerSpec::ApiTriggered)
                        .then(|| spec.compile().ok())
                        .flatten()
                })?;
                Some((row.id, compiled))
            })
            .collect();
        if campaigns.is_empty() {
            return Ok(report);
        }
        let mut paces: HashMap<String, Pace> = HashMap::new();
        for record in triggers {
            // The sends this trigger causes join the trace of the request that raised it.
            let _trace = record.trace_context.as_deref().map(|parent| {
                leadwire_telemetry::resume(
                    tracing::info_span!("campaign trigger", seq = record.seq),
                    parent,
                )
            });
            let fired: Vec<&(String, Arc<Compiled>)> = campaigns
                .iter()
                .filter(|(_, c)| c.fired_by(&record.trigger))
                .collect();
            if fired.is_empty() {
                continue;
            }
            // Braze evaluates the audience after the trigger, against the profile as it is now.
            let Some(profile) = tx.profile_by_braze_id(&record.braze_id)? else {
                continue;
            };
            for (campaign_id, campaign) in fired {
                if !campaign
                    .audience
                    .as_ref()
                    .is_none_or(|f| f.matches_profile(&profile))
                {
                    continue;
                }
                if !eligible(
                    tx.last_received(campaign_id, &profile.braze_id)?,
                    campaign.spec.reeligibility_seconds,
                    now,
                ) {
                    continue;
                }
                let pace = match paces.entry(campaign_id.clone()) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(Pace::load(tx, campaign_id)?)
                    }
                };
                let slot = pace.next_slot(campaign.spec.rate_limit_per_minute, now);
                let properties = RenderProperties {
                    event_properties: event_properties(&record.trigger),
                    campaign: Some(json!({"name": campaign.spec.name})),
                    ..RenderProperties::default()
                };
                if send(
                    tx,
                    campaign_id,
                    &campaign.spec.template,
                    &profile,
                    properties,
                    slot,
                    Some(record.seq),
                    None,
                    now,
                )? {
                    report.sends += 1;
                }
            }
        }
        for pace in paces.values() {
            pace.save(tx)?;
        }
        Ok(report)
    }
}

fn load_campaigns(tx: &mut Tx<'_>) -> Result<Vec<CampaignRecord>, EngineError> {
    tx.campaigns()?
        .into_iter()
        .map(|row| {
            let spec: CampaignSpec = serde_json::from_str(&row.spec)
                .map_err(|e| EngineError::Corrupt(format!("campaign {}: {e}", row.id)))?;
            Ok(CampaignRecord {
                id: row.id,
                spec,
                last_edited: row.updated_at,
            })
        })
        .collect()
}

/// The id of the active template a campaign or Canvas names.
pub fn template_id(tx: &mut Tx<'_>, name: &str) -> Result<String, EngineError> {
    tx.template_id_by_name(name)?.ok_or_else(|| {
        EngineError::Invalid(format!(
            "no webhook template named '{name}'; create it first (leadwire apply or the REST API)"
        ))
    })
}

fn event_properties(trigger: &Trigger) -> Option<Json> {
    match trigger {
        Trigger::CustomEvent { properties, .. } | Trigger::Purchase { properties, .. } => {
            Some(Json::Object(properties.clone()))
        }
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn send(
    tx: &mut Tx<'_>,
    campaign_id: &str,
    template: &str,
    profile: &Profile,
    properties: RenderProperties,
    slot: DateTime<Utc>,
    trigger_seq: Option<i64>,
    dispatch_id: Option<&str>,
    // The pass's time: eligibility compares against it, so a send recorded in this pass must
    // not look like it came later.
    now: DateTime<Utc>,
) -> Result<bool, EngineError> {
    // A template archived or deleted after the campaign was saved skips the send (logged)
    // rather than stopping the campaign feed for every campaign.
    let Some(template_id) = tx.template_id_by_name(template)? else {
        tracing::warn!(
            campaign = campaign_id,
            template,
            "the campaign's webhook template no longer exists; send skipped"
        );
        return Ok(false);
    };
    let job = NewJob {
        template_id,
        user: user_identifier(profile),
        campaign_id: Some(campaign_id.to_string()),
        step_id: None,
        properties: properties.to_json(),
        not_before: Some(system_time(slot)),
        trace_context: leadwire_telemetry::current_trace_context(),
    };
    let enqueued = tx.enqueue_job(&job)?;
    tx.record_campaign_send(
        campaign_id,
        &profile.braze_id,
        enqueued.job_id,
        dispatch_id,
        trigger_seq,
        now,
    )?;
    Ok(true)
}
