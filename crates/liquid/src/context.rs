//! What a template renders against: variables, the Braze profile behind `${...}`, partials for
//! `include`/`render`, the connected_content client, and the time `now` means.
//!
//! A `Context` is built once and may serve many renders (and threads); per-render state is not here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::Template;
use crate::connected::ConnectedContent;
use crate::error::{ErrorKind, RawError};
use crate::value::{Object, Value};

/// Supplies the source of templates named by `include` and `render`.
pub trait PartialSource: Send + Sync {
    fn source(&self, name: &str) -> Option<String>;
}

impl PartialSource for HashMap<String, String> {
    fn source(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Braze's render-time namespaces, keyed as in the Braze-dialect conformance files.
const BRAZE_NAMESPACES: [(&str, &str); 7] = [
    ("custom_attributes", "custom_attribute"),
    ("event_properties", "event_properties"),
    ("canvas_entry_properties", "canvas_entry_properties"),
    ("api_trigger_properties", "api_trigger_properties"),
    ("context", "context"),
    ("campaign", "campaign"),
    ("canvas", "canvas"),
];

/// Profile objects addressed as `{{namespace.${key}}}` rather than `{{${key}}}`.
const PROFILE_NAMESPACES: [&str; 4] = [
    "subscribed_state",
    "most_recently_used_device",
    "targeted_device",
    "app",
];

/// Output past this size stops rendering with an error; a webhook body is far smaller.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 16 * 1024 * 1024;

pub struct Context {
    globals: Object,
    braze: Object,
    partials: Option<Arc<dyn PartialSource>>,
    parsed_partials: Mutex<HashMap<String, Arc<Template>>>,
    connected: Option<Arc<ConnectedContent>>,
    now: Option<DateTime<Utc>>,
    max_output_bytes: usize,
    max_loop_time: std::time::Duration,
}

/// How long one render's loops may run before rendering stops with a limit error (a template of
/// nested loops under the iteration cap can still burn seconds of CPU per user).
pub const DEFAULT_MAX_LOOP_TIME: std::time::Duration = std::time::Duration::from_secs(2);

impl Default for Context {
    fn default() -> Self {
        Context::new()
    }
}

impl Context {
    pub fn new() -> Context {
        Context {
            globals: Object::default(),
            braze: Object::default(),
            partials: None,
            parsed_partials: Mutex::new(HashMap::new()),
            connected: None,
            now: None,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            max_loop_time: DEFAULT_MAX_LOOP_TIME,
        }
    }

    /// Plain Liquid variables from a JSON object (other JSON values are ignored).
    pub fn with_globals(mut self, data: &serde_json::Value) -> Context {
        if let serde_json::Value::Object(map) = data {
            for (k, v) in map {
                self.globals.insert(k.as_str().into(), Value::from(v));
            }
        }
        self
    }

    pub fn set_global(&mut self, name: &str, value: Value) {
        self.globals.insert(name.into(), value);
    }

    /// Braze's render context: `profile` (standard attributes by their Liquid tag names, read as
    /// `${name}`), `custom_attributes` (read as `custom_attribute.${name}`), `event_properties`,
    /// `canvas_entry_properties`, `api_trigger_properties`, `context`, `campaign` and `canvas`.
    pub fn with_braze(mut self, braze: &serde_json::Value) -> Context {
        if let Some(serde_json::Value::Object(profile)) = braze.get("profile") {
            for (k, v) in profile {
                let value = Value::from(v);
                if PROFILE_NAMESPACES.contains(&k.as_str()) {
                    self.globals.insert(k.as_str().into(), value.clone());
                }
                self.braze.insert(k.as_str().into(), value);
            }
        }
        for (key, liquid_name) in BRAZE_NAMESPACES {
            if let Some(v) = braze.get(key) {
                self.globals.insert(liquid_name.into(), Value::from(v));
            }
        }
        self
    }

    pub fn with_partials(mut self, partials: Arc<dyn PartialSource>) -> Context {
        self.partials = Some(partials);
        self
    }

    pub fn with_connected_content(mut self, client: Arc<ConnectedContent>) -> Context {
        self.connected = Some(client);
        self
    }

    /// Fixes what `now` and `today` mean to the `date` filter, so renders are deterministic.
    pub fn with_now(mut self, now: DateTime<Utc>) -> Context {
        self.now = Some(now);
        self
    }

    /// Caps the output, and any one string a template builds with `assign` or `capture`, at
    /// `max` bytes; the strings it assigns in all may take four times that.
    pub fn with_max_output_bytes(mut self, max: usize) -> Context {
        self.max_output_bytes = max;
        self
    }

    /// How long one render's loops may run in all.
    pub fn with_max_loop_time(mut self, max: std::time::Duration) -> Context {
        self.max_loop_time = max;
        self
    }

    pub(crate) fn max_loop_time(&self) -> std::time::Duration {
        self.max_loop_time
    }

    pub(crate) fn max_output_bytes(&self) -> usize {
        self.max_output_bytes
    }

    pub(crate) fn global_opt(&self, name: &str) -> Option<Value> {
        self.globals.get(name).cloned()
    }

    pub(crate) fn braze_attribute(&self, name: &str) -> Value {
        if let Some(v) = self.braze.get(name) {
            return v.clone();
        }
        if name.contains('.') {
            let mut parts = name.split('.');
            let root = parts
                .next()
                .and_then(|r| self.braze.get(r))
                .cloned()
                .unwrap_or_default();
            return parts.fold(root, |v, k| crate::render::property(&v, k));
        }
        Value::Nil
    }

    pub(crate) fn fixed_now(&self) -> Option<DateTime<Utc>> {
        self.now
    }

    pub(crate) fn connected(&self) -> Option<&ConnectedContent> {
        self.connected.as_deref()
    }

    pub(crate) fn check_output_size(&self, len: usize) -> Result<(), RawError> {
        if len > self.max_output_bytes {
            return Err(RawError {
                kind: ErrorKind::Limit,
                message: format!("output is larger than {} bytes", self.max_output_bytes),
                offset: 0,
            });
        }
        Ok(())
    }

    pub(crate) fn partial(&self, name: &str) -> Result<Arc<Template>, String> {
        if let Ok(cache) = self.parsed_partials.lock()
            && let Some(t) = cache.get(name)
        {
            return Ok(t.clone());
        }
        let Some(source) = self.partials.as_ref().and_then(|p| p.source(name)) else {
            return Err(format!("no template named '{name}' to include"));
        };
        let template =
            Arc::new(Template::parse(&source).map_err(|e| format!("in template '{name}': {e}"))?);
        if let Ok(mut cache) = self.parsed_partials.lock() {
            cache.insert(name.to_string(), template.clone());
        }
        Ok(template)
    }
}
