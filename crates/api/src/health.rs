//! `/healthz`, `/readyz` and `/metrics`: for load balancers, orchestrators and Prometheus, so
//! outside API-key auth (they reveal no user data).
//!
//! Metrics are recorded through the `metrics` facade wherever they happen (delivery, store,
//! connected_content); [`install_metrics`] installs the Prometheus recorder once per process and
//! `/metrics` renders it, after refreshing the gauges read at scrape time (jobs by state).

use std::sync::OnceLock;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;

use crate::AppState;

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder as the process's `metrics` recorder (the first call does;
/// later calls return the same handle). `None` when another recorder was installed first.
pub fn install_metrics() -> Option<PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0, 90.0,
                ])
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .clone()
}

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

/// The process is up and answering.
async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// Ready for traffic: the database answers with leadwire's schema in place, and the webhook
/// workers run (when this node delivers).
async fn readyz(State(state): State<AppState>) -> Response {
    // One indexed read of a table only leadwire's migrations create: cheap enough for a probe
    // every few seconds, and it fails on a database without the schema.
    let database = state.store.read(|tx| tx.next_job_due()).await;
    let workers = state.webhooks.as_ref().map(|w| w.is_running());
    let mut problems = Vec::new();
    if let Err(e) = &database {
        problems.push(format!("the database does not answer: {e}"));
    }
    if workers == Some(false) {
        problems.push("the webhook workers are not running".to_owned());
    }
    let body = json!({
        "status": if problems.is_empty() { "ready" } else { "not_ready" },
        "database": if database.is_ok() { "ok" } else { "unreachable" },
        "backend": state.store.backend_name(),
        "workers": match workers { Some(true) => "running", Some(false) => "stopped", None => "not on this node" },
        "problems": problems,
    });
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// Prometheus' text format.
async fn metrics_text(State(state): State<AppState>) -> Response {
    let Some(handle) = state.metrics.clone() else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "metrics are not recorded by this server"})),
        )
            .into_response();
    };
    if let Some(webhooks) = &state.webhooks {
        if let Ok(counts) = webhooks.job_counts().await {
            for (job_state, n) in counts {
                metrics::gauge!("leadwire_webhook_jobs", "state" => format!("{job_state:?}").to_lowercase())
                    .set(n as f64);
            }
        }
        for (host, value) in webhooks.circuit_states() {
            metrics::gauge!("leadwire_circuit_state", "host" => host).set(value);
        }
    }
    // How far each feed consumer is behind the feed's end, and how long the oldest queued send
    // has waited: the two numbers that say leadwire is falling behind.
    let read = state
        .store
        .read(|tx| {
            let end = tx.feed_end()?;
            let mut lags = Vec::new();
            for consumer in leadwire_store::Consumer::ALL {
                lags.push((consumer.as_str(), end - tx.feed_position(consumer)?));
            }
            Ok::<_, leadwire_store::StoreError>((lags, tx.oldest_outstanding_job()?))
        })
        .await;
    if let Ok((lags, oldest)) = read {
        for (consumer, lag) in lags {
            metrics::gauge!("leadwire_feed_lag_triggers", "consumer" => consumer)
                .set(lag.max(0) as f64);
        }
        let age = oldest
            .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        metrics::gauge!("leadwire_webhook_oldest_job_age_seconds").set(age);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}
