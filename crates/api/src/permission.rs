//! Every permission an API key can carry, under Braze's dotted names (`users.track`,
//! `canvas.write`…). Endpoints require a [`Permission`]; the store keeps the names as strings, so
//! they are converted at the edges: [`Permission::as_str`] when a key is created, [`Granted::parse`]
//! when a request's key is loaded.

use std::fmt;
use std::str::FromStr;

// One list generates the enum, `ALL` and the names, so none of them can miss a permission.
macro_rules! permissions {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)+) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Permission {
            $($(#[$doc])* $variant,)+
        }

        impl Permission {
            /// Every permission, in the order `--help` and error messages list them.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant),+];

            /// Braze's name for the permission, as keys store it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Permission::$variant => $name,)+
                }
            }
        }
    };
}

permissions! {
    /// `POST /users/track`.
    UsersTrack => "users.track",
    /// `POST /users/export/ids`.
    UsersExportIds => "users.export.ids",
    /// `POST /users/delete`.
    UsersDelete => "users.delete",
    /// `POST /users/alias/new`.
    UsersAliasNew => "users.alias.new",
    /// `POST /users/identify`.
    UsersIdentify => "users.identify",
    /// `GET /triggers` (the trigger feed).
    TriggersRead => "triggers.read",
    /// `POST /campaigns/trigger/send`.
    CampaignsTriggerSend => "campaigns.trigger.send",
    /// `GET /campaigns/details`, `/campaigns/list`.
    CampaignsRead => "campaigns.read",
    /// `POST /campaigns/create`, `/update`, `/pause`, `/resume`.
    CampaignsWrite => "campaigns.write",
    /// `POST /canvas/trigger/send`.
    CanvasTriggerSend => "canvas.trigger.send",
    /// `GET /canvas/details`, `/canvas/list`.
    CanvasRead => "canvas.read",
    /// `POST /canvas/create`, `/update`, `/pause`, `/resume`.
    CanvasWrite => "canvas.write",
    /// `/templates/webhook/info`, `/list`, `/preview`.
    TemplatesRead => "templates.read",
    /// `/templates/webhook/create`, `/update`, `/archive`, `/test_send`.
    TemplatesWrite => "templates.write",
    /// `GET /credentials/list` (never the secrets).
    CredentialsRead => "credentials.read",
    /// `POST /credentials/create`.
    CredentialsWrite => "credentials.write",
    /// `GET /activity` (the message activity log).
    ActivityRead => "activity.read",
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`Permission::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission '{given}'; valid permissions: {}", valid_names())]
pub struct UnknownPermission {
    pub given: String,
}

fn valid_names() -> String {
    Permission::ALL
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for Permission {
    type Err = UnknownPermission;

    /// Exact names only: a key's permissions are compared as Braze spells them.
    fn from_str(s: &str) -> Result<Permission, UnknownPermission> {
        Permission::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPermission {
                given: s.to_owned(),
            })
    }
}

/// What the key of the request being answered may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Granted(Vec<Permission>);

impl Granted {
    /// Parses a key's stored names. Unknown ones (from a newer leadwire, or a hand-edited
    /// database) grant nothing; they are returned so the caller can warn about them.
    pub(crate) fn parse(stored: &[String]) -> (Granted, Vec<&str>) {
        let mut granted = Vec::with_capacity(stored.len());
        let mut unknown = Vec::new();
        for name in stored {
            match name.parse::<Permission>() {
                Ok(p) => granted.push(p),
                Err(_) => unknown.push(name.as_str()),
            }
        }
        (Granted(granted), unknown)
    }

    pub(crate) fn allows(&self, permission: Permission) -> bool {
        self.0.contains(&permission)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_permission_round_trips_through_its_name() {
        for &p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>(), Ok(p));
            assert_eq!(p.to_string(), p.as_str());
        }
        let names: HashSet<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(names.len(), Permission::ALL.len(), "names are distinct");
        assert!(names.contains("canvas.read") && names.contains("canvas.write"));
    }

    #[test]
    fn unknown_names_are_refused_with_the_valid_ones() {
        let err = "canvas.wirte"
            .parse::<Permission>()
            .expect_err("a typo is refused");
        assert_eq!(err.given, "canvas.wirte");
        let message = err.to_string();
        assert!(
            message
                .starts_with("unknown permission 'canvas.wirte'; valid permissions: users.track, "),
            "{message}"
        );
        for p in Permission::ALL {
            assert!(message.contains(p.as_str()), "{message}");
        }
        assert!("Users.Track".parse::<Permission>().is_err(), "exact names");
    }

    #[test]
    fn stored_names_parse_and_unknown_ones_grant_nothing() {
        let stored = ["users.track", "reports.read", "canvas.write"].map(String::from);
        let (granted, unknown) = Granted::parse(&stored);
        assert!(granted.allows(Permission::UsersTrack));
        assert!(granted.allows(Permission::CanvasWrite));
        assert!(!granted.allows(Permission::CanvasRead));
        assert_eq!(unknown, ["reports.read"]);
    }
}
