//! Which Salesforce resource a rendered webhook request addresses.
//!
//! Delivery asks this to tell a create (whose blind retry can duplicate a lead) from an update or
//! an upsert by external id (whose retries are safe), and to refuse a `PATCH …/sobjects/Lead/`
//! whose record id rendered empty. The linter asks it which object's fields a body should hold.

use percent_encoding::percent_decode_str;

/// Hosts leadwire treats as Salesforce: `*.salesforce.com` (so `*.my.salesforce.com`),
/// `*.force.com`, and any instance configured by origin or host (the emulator, a proxy).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instances {
    /// Lower-case host, and the port when the entry names one.
    configured: Vec<(String, Option<u16>)>,
}

impl Instances {
    /// `entries` are origins (`https://127.0.0.1:8443`) or hosts (`sf.internal`).
    pub fn new<I, S>(entries: I) -> Instances
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let configured = entries
            .into_iter()
            .filter_map(|e| {
                let e = e.as_ref().trim();
                let with_scheme = if e.contains("://") {
                    e.to_owned()
                } else {
                    format!("http://{e}")
                };
                let url = url::Url::parse(&with_scheme).ok()?;
                let host = url.host_str()?.to_ascii_lowercase();
                Some((host, url.port()))
            })
            .collect();
        Instances { configured }
    }

    /// Whether `host` (and `port`, when the entry names one) is a Salesforce instance.
    pub fn contains(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.to_ascii_lowercase();
        if host.ends_with(".salesforce.com") || host.ends_with(".force.com") {
            return true;
        }
        self.configured
            .iter()
            .any(|(h, p)| *h == host && (p.is_none() || *p == port))
    }
}

/// What a request does to the sObject it addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `POST …/sobjects/Lead/`: a new record each time it is received.
    Create { object: String },
    /// `PATCH …/sobjects/Lead/{id}`: idempotent.
    Update { object: String, id: String },
    /// `PATCH …/sobjects/Lead/{Field__c}/{value}`: creates or updates the one record with that
    /// external id, so a retry cannot duplicate it.
    Upsert {
        object: String,
        field: String,
        value: String,
    },
    /// `PATCH` or `DELETE …/sobjects/Lead/` with no id: the record id rendered empty.
    MissingRecordId { object: String },
    /// `POST …/composite/sobjects`: an sObject Collections create.
    CollectionCreate,
    /// Anything else under the REST API (reads, queries, describe…).
    Other,
}

/// A request to a Salesforce instance's REST API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `scheme://host[:port]`: one org's instance, the key for its token and API budget.
    pub origin: String,
    /// `60.0` for `/services/data/v60.0/`.
    pub api_version: String,
    pub operation: Operation,
}

impl Target {
    /// The object whose fields the request body holds, when it holds one record.
    pub fn object(&self) -> Option<&str> {
        match &self.operation {
            Operation::Create { object }
            | Operation::Update { object, .. }
            | Operation::Upsert { object, .. }
            | Operation::MissingRecordId { object } => Some(object),
            _ => None,
        }
    }

    /// `{origin}/services/data/v{version}/{rest}`.
    pub fn data_url(&self, rest: &str) -> String {
        format!(
            "{}/services/data/v{}/{}",
            self.origin,
            self.api_version,
            rest.trim_start_matches('/')
        )
    }
}

/// Reads a rendered request's method and URL; `None` when it is not a Salesforce REST API URL.
pub fn classify(method: &str, url: &str, instances: &Instances) -> Option<Target> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    let host = parsed.host_str()?;
    if !instances.contains(host, parsed.port()) {
        return None;
    }
    let origin = parsed.origin().ascii_serialization();
    let path = parsed.path();
    let rest = strip_prefix_ignore_case(path, "/services/data/v")?;
    let (version, rest) = rest.split_once('/').unwrap_or((rest, ""));
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    // Salesforce accepts a trailing slash everywhere; an empty segment in the middle is an
    // empty id, which is what we want to see.
    let trailing_slash = rest.ends_with('/');
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let segments: Vec<String> = rest
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let method = method.to_ascii_uppercase();
    let operation = match segments.as_slice() {
        [sobjects, object] if sobjects.eq_ignore_ascii_case("sobjects") && !object.is_empty() => {
            match method.as_str() {
                "POST" => Operation::Create {
                    object: object.clone(),
                },
                "PATCH" | "DELETE" | "PUT" => Operation::MissingRecordId {
                    object: object.clone(),
                },
                _ => Operation::Other,
            }
        }
        [sobjects, object, id]
            if sobjects.eq_ignore_ascii_case("sobjects") && !object.is_empty() =>
        {
            match (method.as_str(), id.is_empty()) {
                ("PATCH" | "DELETE" | "PUT", true) => Operation::MissingRecordId {
                    object: object.clone(),
                },
                // `sobjects/Lead/Key__c/`: an upsert whose external id rendered empty.
                ("PATCH" | "DELETE" | "PUT", false) if trailing_slash && !looks_like_id(id) => {
                    Operation::MissingRecordId {
                        object: object.clone(),
                    }
                }
                ("PATCH", false) if !id.eq_ignore_ascii_case("describe") => Operation::Update {
                    object: object.clone(),
                    id: id.clone(),
                },
                _ => Operation::Other,
            }
        }
        [sobjects, object, field, value]
            if sobjects.eq_ignore_ascii_case("sobjects") && !object.is_empty() =>
        {
            match (method.as_str(), field.is_empty() || value.is_empty()) {
                ("PATCH" | "DELETE" | "PUT", true) => Operation::MissingRecordId {
                    object: object.clone(),
                },
                ("PATCH", false) => Operation::Upsert {
                    object: object.clone(),
                    field: field.clone(),
                    value: value.clone(),
                },
                _ => Operation::Other,
            }
        }
        [composite, sobjects]
            if composite.eq_ignore_ascii_case("composite")
                && sobjects.eq_ignore_ascii_case("sobjects")
                && method == "POST" =>
        {
            Operation::CollectionCreate
        }
        _ => Operation::Other,
    };
    Some(Target {
        origin,
        api_version: version.to_owned(),
        operation,
    })
}

/// A 15- or 18-character record id's shape.
fn looks_like_id(text: &str) -> bool {
    matches!(text.len(), 15 | 18) && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(method: &str, url: &str) -> Option<Operation> {
        classify(method, url, &Instances::new(["http://127.0.0.1:8443"])).map(|t| t.operation)
    }

    #[test]
    fn salesforce_hosts_and_configured_instances() {
        let i = Instances::new(["http://127.0.0.1:8443", "sf.internal"]);
        assert!(i.contains("acme.my.salesforce.com", None));
        assert!(i.contains("ACME.my.salesforce.com", Some(443)));
        assert!(i.contains("login.salesforce.com", None));
        assert!(i.contains("acme.lightning.force.com", None));
        assert!(i.contains("127.0.0.1", Some(8443)));
        assert!(!i.contains("127.0.0.1", Some(8444)));
        assert!(i.contains("sf.internal", None));
        assert!(!i.contains("salesforce.com.evil.example", None));
        assert!(!i.contains("example.com", None));
    }

    #[test]
    fn operations_from_method_and_path() {
        let base = "https://acme.my.salesforce.com/services/data/v60.0";
        let lead = || "Lead".to_owned();
        assert_eq!(
            op("POST", &format!("{base}/sobjects/Lead/")),
            Some(Operation::Create { object: lead() })
        );
        assert_eq!(
            op("post", &format!("{base}/sobjects/Lead")),
            Some(Operation::Create { object: lead() })
        );
        assert_eq!(
            op("PATCH", &format!("{base}/sobjects/Lead/00Q5e00000AbCdEFGH")),
            Some(Operation::Update {
                object: lead(),
                id: "00Q5e00000AbCdEFGH".into()
            })
        );
        assert_eq!(
            op("PATCH", &format!("{base}/sobjects/Lead/")),
            Some(Operation::MissingRecordId { object: lead() })
        );
        assert_eq!(
            op("PATCH", &format!("{base}/sobjects/Lead//")),
            Some(Operation::MissingRecordId { object: lead() })
        );
        assert_eq!(
            op(
                "PATCH",
                &format!("{base}/sobjects/Lead/Leadwire_Key__c/a%40b.c")
            ),
            Some(Operation::Upsert {
                object: lead(),
                field: "Leadwire_Key__c".into(),
                value: "a@b.c".into()
            })
        );
        assert_eq!(
            op("PATCH", &format!("{base}/sobjects/Lead/Leadwire_Key__c/")),
            Some(Operation::MissingRecordId { object: lead() })
        );
        assert_eq!(
            op("POST", &format!("{base}/composite/sobjects")),
            Some(Operation::CollectionCreate)
        );
        assert_eq!(
            op("GET", &format!("{base}/sobjects/Lead/describe")),
            Some(Operation::Other)
        );
        assert_eq!(
            op(
                "POST",
                "http://127.0.0.1:8443/services/data/v59.0/sobjects/Lead/"
            ),
            Some(Operation::Create { object: lead() })
        );
        assert_eq!(
            op(
                "POST",
                "https://example.com/services/data/v60.0/sobjects/Lead/"
            ),
            None
        );
        assert_eq!(
            op(
                "POST",
                "https://acme.my.salesforce.com/services/oauth2/token"
            ),
            None
        );
        let t = classify(
            "POST",
            &format!("{base}/sobjects/Lead/"),
            &Instances::default(),
        )
        .expect("salesforce");
        assert_eq!(t.origin, "https://acme.my.salesforce.com");
        assert_eq!(t.api_version, "60.0");
        assert_eq!(
            t.data_url("query?q=x"),
            "https://acme.my.salesforce.com/services/data/v60.0/query?q=x"
        );
    }
}
