//! Who an object in a request is about.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UserAlias {
    pub alias_name: String,
    pub alias_label: String,
}

/// One of Braze's identifiers. When an object carries several, Braze's precedence picks one:
/// external_id, then braze_id, then user_alias, then email, then phone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Identifier {
    ExternalId(String),
    BrazeId(String),
    Alias(UserAlias),
    Email(String),
    Phone(String),
}

impl Identifier {
    pub fn describe(&self) -> String {
        match self {
            Identifier::ExternalId(id) => format!("external_id '{id}'"),
            Identifier::BrazeId(id) => format!("braze_id '{id}'"),
            Identifier::Alias(a) => format!("user_alias '{}' ({})", a.alias_name, a.alias_label),
            Identifier::Email(e) => format!("email '{e}'"),
            Identifier::Phone(p) => format!("phone '{p}'"),
        }
    }
}
