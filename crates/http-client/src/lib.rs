//! Outbound HTTP for leadwire: one pooled client (keep-alive, HTTP/1.1 and 2, rustls, optional extra
//! trusted CA) and [`HttpFetcher`], the real implementation of the Liquid engine's
//! [`Fetcher`](leadwire_liquid::Fetcher) for `connected_content`.
//!
//! Must not know about templates' syntax, profiles or storage; it only moves bytes with limits.

use std::time::Duration;

use leadwire_liquid::{FetchError, FetchRequest, FetchResponse, Fetcher, Method};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("extra CA certificate is not valid PEM: {0}")]
    BadCertificate(String),
    #[error("could not build the HTTP client: {0}")]
    Build(String),
}

/// Settings for the shared client.
#[derive(Debug, Clone, Default)]
pub struct ClientConfig {
    /// PEM certificates to trust in addition to the public roots (e.g. the Salesforce emulator's).
    pub extra_ca_pem: Vec<Vec<u8>>,
    /// Idle keep-alive connections kept per host.
    pub pool_max_idle_per_host: Option<usize>,
}

/// Builds the pooled client: no redirects (Braze follows none), rustls, HTTP/2 when offered.
pub fn build_client(config: &ClientConfig) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(config.pool_max_idle_per_host.unwrap_or(64))
        .use_rustls_tls();
    for pem in &config.extra_ca_pem {
        let cert = reqwest::Certificate::from_pem(pem)
            .map_err(|e| ClientError::BadCertificate(e.to_string()))?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build()
        .map_err(|e| ClientError::Build(e.to_string()))
}

/// `connected_content` over the pooled async client.
///
/// Rendering is synchronous, so `fetch` blocks on the runtime it was given: call renders that use
/// connected_content from a blocking thread (`tokio::task::spawn_blocking`) or any non-runtime
/// thread, never directly on an async worker.
#[derive(Clone)]
pub struct HttpFetcher {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl HttpFetcher {
    pub fn new(client: reqwest::Client, runtime: tokio::runtime::Handle) -> HttpFetcher {
        HttpFetcher { client, runtime }
    }

    async fn fetch_async(&self, request: &FetchRequest) -> Result<FetchResponse, FetchError> {
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
        };
        let mut builder = self
            .client
            .request(method, &request.url)
            .timeout(request.timeout);
        for (k, v) in &request.headers {
            builder = builder.header(k, v);
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let mut response = builder
            .send()
            .await
            .map_err(|e| classify(&e, request.timeout))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        if response
            .content_length()
            .is_some_and(|len| len > request.max_response_bytes as u64)
        {
            return Err(FetchError::TooLarge(request.max_response_bytes));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| classify(&e, request.timeout))?
        {
            if body.len() + chunk.len() > request.max_response_bytes {
                return Err(FetchError::TooLarge(request.max_response_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchResponse {
            status,
            headers,
            body,
        })
    }
}

fn classify(error: &reqwest::Error, timeout: Duration) -> FetchError {
    if error.is_timeout() {
        FetchError::Timeout(timeout)
    } else {
        FetchError::Connect(error.to_string())
    }
}

impl Fetcher for HttpFetcher {
    fn fetch(&self, request: &FetchRequest) -> Result<FetchResponse, FetchError> {
        let outcome = self.runtime.block_on(self.fetch_async(request));
        let kind = if leadwire_liquid::is_token_request(request) {
            "token"
        } else {
            "content"
        };
        let status = match &outcome {
            Ok(r) => status_class(r.status),
            Err(_) => "none",
        };
        metrics::counter!("leadwire_connected_content_requests_total", "kind" => kind, "status_class" => status)
            .increment(1);
        outcome
    }
}

/// `2xx`, `4xx`… for metric labels.
fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}
