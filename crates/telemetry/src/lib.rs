//! leadwire's logs and traces: one `tracing` subscriber writing text or JSON lines to stderr and,
//! when an OTLP endpoint is configured, exporting spans to an OpenTelemetry collector.
//!
//! A send crosses a queue: `/users/track` writes a trigger, the campaign engine reads it later
//! and enqueues a job, a worker sends it later still. To keep those spans in one trace, the
//! stages hand each other a W3C `traceparent` string ([`current_trace_context`] where work is
//! recorded, [`continue_trace`] where it is picked up), which the store keeps beside the trigger
//! and the job. Without an exporter there is no trace context and the string is `None`.
//!
//! This crate must not know about the store, HTTP servers or Salesforce.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error(
        "OTLP endpoint '{0}': expected an http:// or https:// URL such as http://localhost:4318 (the collector's OTLP/HTTP port)"
    )]
    Endpoint(String),
    #[error(
        "OTLP protocol '{0}': use http/protobuf (the default) or http/json; gRPC is not built in, point leadwire at the collector's OTLP/HTTP port (4318) instead"
    )]
    Protocol(String),
    #[error("setting up the OTLP exporter for {url}: {message}")]
    Exporter { url: String, message: String },
    #[error("a tracing subscriber is already installed in this process")]
    AlreadyInstalled,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOutput {
    /// One JSON object per line (timestamp, level, target, fields, span) instead of text.
    pub json: bool,
    /// Colour codes (only for a person at a terminal).
    pub ansi: bool,
}

/// OTLP/HTTP's two encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OtlpProtocol {
    #[default]
    Protobuf,
    Json,
}

impl std::str::FromStr for OtlpProtocol {
    type Err = TelemetryError;

    /// The values of `OTEL_EXPORTER_OTLP_PROTOCOL`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "http/protobuf" | "" => Ok(OtlpProtocol::Protobuf),
            "http/json" => Ok(OtlpProtocol::Json),
            other => Err(TelemetryError::Protocol(other.to_owned())),
        }
    }
}

/// Where spans go: a collector's OTLP/HTTP traces URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// The full traces URL (`…/v1/traces`).
    pub traces_url: String,
    pub protocol: OtlpProtocol,
    /// `service.name` on every span.
    pub service_name: String,
}

impl OtlpConfig {
    /// From a base endpoint as `OTEL_EXPORTER_OTLP_ENDPOINT` gives it (`http://collector:4318`):
    /// the traces path is appended, as the OpenTelemetry specification says.
    pub fn from_base_endpoint(
        base: &str,
        protocol: OtlpProtocol,
        service_name: &str,
    ) -> Result<OtlpConfig, TelemetryError> {
        let base = base.trim();
        let rest = base
            .strip_prefix("http://")
            .or_else(|| base.strip_prefix("https://"))
            .ok_or_else(|| TelemetryError::Endpoint(base.to_owned()))?;
        if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
            return Err(TelemetryError::Endpoint(base.to_owned()));
        }
        Ok(OtlpConfig {
            traces_url: format!("{}/v1/traces", base.trim_end_matches('/')),
            protocol,
            service_name: service_name.to_owned(),
        })
    }
}

/// The installed subscriber; dropping it (or [`Telemetry::shutdown`]) exports the spans still
/// buffered.
#[must_use = "dropping it at once would shut the exporter down"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports what is buffered and stops the exporter (at most a few seconds: a collector
    /// that is down must not hold up leadwire's shutdown).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown_with_timeout(Duration::from_secs(5))
        {
            eprintln!("leadwire: exporting the last spans failed: {error}");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Installs the process's subscriber: log lines filtered by `RUST_LOG` (default `info`) and,
/// with `otlp`, span export. Call once, at start-up.
pub fn init(logs: LogOutput, otlp: Option<&OtlpConfig>) -> Result<Telemetry, TelemetryError> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(logs.ansi);
    let fmt = if logs.json {
        fmt.json().with_current_span(true).boxed()
    } else {
        fmt.boxed()
    };
    let provider = otlp.map(tracer_provider).transpose()?;
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("leadwire"))
            .with_tracked_inactivity(false)
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(Telemetry { provider })
}

fn tracer_provider(config: &OtlpConfig) -> Result<SdkTracerProvider, TelemetryError> {
    let protocol = match config.protocol {
        OtlpProtocol::Protobuf => opentelemetry_otlp::Protocol::HttpBinary,
        OtlpProtocol::Json => opentelemetry_otlp::Protocol::HttpJson,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(config.traces_url.clone())
        .with_protocol(protocol)
        .with_timeout(Duration::from_secs(10))
        .with_headers(HashMap::new())
        .build()
        .map_err(|e| TelemetryError::Exporter {
            url: config.traces_url.clone(),
            message: e.to_string(),
        })?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The current span's trace as a W3C `traceparent` (`00-<trace>-<span>-<flags>`), to store
/// beside work another task picks up later; `None` when spans are not exported.
pub fn current_trace_context() -> Option<String> {
    let context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the span a stored or received `traceparent` names. A malformed
/// value is ignored: a broken trace must never stop a send.
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// Enters `span` as a child of a stored trace, for as long as the guard lives: synchronous work
/// done on behalf of a stored trigger (the jobs it enqueues read [`current_trace_context`]).
pub fn resume(span: tracing::Span, traceparent: &str) -> tracing::span::EnteredSpan {
    continue_trace(&span, traceparent);
    span.entered()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_appended_to_a_base_endpoint() {
        let c = OtlpConfig::from_base_endpoint(
            "http://collector:4318/",
            OtlpProtocol::Json,
            "leadwire",
        )
        .expect("valid");
        assert_eq!(c.traces_url, "http://collector:4318/v1/traces");
        let c = OtlpConfig::from_base_endpoint(
            "https://otel.example.com/otlp",
            OtlpProtocol::Protobuf,
            "x",
        )
        .expect("valid");
        assert_eq!(c.traces_url, "https://otel.example.com/otlp/v1/traces");
    }

    #[test]
    fn endpoints_and_protocols_that_cannot_work_are_refused_with_what_to_do() {
        for bad in ["collector:4318", "http://", "ftp://x", "http:// x"] {
            let e = OtlpConfig::from_base_endpoint(bad, OtlpProtocol::Protobuf, "x")
                .expect_err(bad)
                .to_string();
            assert!(e.contains("http://localhost:4318"), "{e}");
        }
        let e = "grpc"
            .parse::<OtlpProtocol>()
            .expect_err("grpc")
            .to_string();
        assert_eq!(
            e,
            "OTLP protocol 'grpc': use http/protobuf (the default) or http/json; gRPC is not built in, point leadwire at the collector's OTLP/HTTP port (4318) instead"
        );
        assert_eq!(
            "http/json".parse::<OtlpProtocol>().ok(),
            Some(OtlpProtocol::Json)
        );
    }

    #[test]
    fn without_an_exporter_there_is_no_trace_context() {
        let span = tracing::info_span!("x");
        let _entered = span.enter();
        assert_eq!(current_trace_context(), None);
        // And a stored one is taken without complaint.
        continue_trace(
            &span,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
        continue_trace(&span, "garbage");
    }
}
