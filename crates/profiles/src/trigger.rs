//! What a change to a profile raises, for campaigns and canvases to act on.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Trigger {
    /// The profile got an email address for the first time.
    EmailAdded { email: String },
    /// A custom attribute took a new value (not raised for null, nor for the same value again).
    AttributeChanged {
        name: String,
        old: Option<serde_json::Value>,
        new: serde_json::Value,
    },
    CustomEvent {
        name: String,
        properties: serde_json::Map<String, serde_json::Value>,
        time: String,
    },
    Purchase {
        product_id: String,
        currency: String,
        price: f64,
        quantity: i64,
        properties: serde_json::Map<String, serde_json::Value>,
        time: String,
    },
}

impl Trigger {
    /// A short name for the kind of trigger, as stored and filtered on.
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::EmailAdded { .. } => "email_added",
            Trigger::AttributeChanged { .. } => "attribute_changed",
            Trigger::CustomEvent { .. } => "custom_event",
            Trigger::Purchase { .. } => "purchase",
        }
    }
}
