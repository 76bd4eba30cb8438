//! The Lead field catalogue: standard fields with Salesforce's types, labels and lengths, plus the custom
//! fields the configuration declares. Pure data; knows nothing of HTTP, JSON bodies or stored records.

use std::collections::HashMap;

use serde_json::Value;

/// Salesforce field types that matter for validation and describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldType {
    Id,
    Boolean,
    String,
    TextArea,
    Email,
    Phone,
    Url,
    Picklist,
    Reference,
    Double,
    Currency,
    Int,
    Date,
    DateTime,
    Address,
}

impl FieldType {
    /// The name describe uses (`"string"`, `"picklist"` …).
    pub fn describe_name(self) -> &'static str {
        match self {
            FieldType::Id => "id",
            FieldType::Boolean => "boolean",
            FieldType::String => "string",
            FieldType::TextArea => "textarea",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::Picklist => "picklist",
            FieldType::Reference => "reference",
            FieldType::Double => "double",
            FieldType::Currency => "currency",
            FieldType::Int => "int",
            FieldType::Date => "date",
            FieldType::DateTime => "datetime",
            FieldType::Address => "address",
        }
    }

    /// Holds text, so it has a length limit and takes JSON strings.
    pub fn is_text(self) -> bool {
        matches!(
            self,
            FieldType::String
                | FieldType::TextArea
                | FieldType::Email
                | FieldType::Phone
                | FieldType::Url
                | FieldType::Picklist
                | FieldType::Reference
                | FieldType::Id
        )
    }

    fn soap_type(self) -> &'static str {
        match self {
            FieldType::Id | FieldType::Reference => "tns:ID",
            FieldType::Boolean => "xsd:boolean",
            FieldType::Double | FieldType::Currency => "xsd:double",
            FieldType::Int => "xsd:int",
            FieldType::Date => "xsd:date",
            FieldType::DateTime => "xsd:dateTime",
            FieldType::Address => "urn:address",
            _ => "xsd:string",
        }
    }
}

/// Values the emulator fills in itself rather than taking from a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Computed {
    Id,
    IsDeleted,
    /// FirstName + LastName.
    Name,
    /// The compound of Street, City, State, PostalCode, Country, Latitude, Longitude, GeocodeAccuracy.
    Address,
    PhotoUrl,
    CreatedDate,
    LastModifiedDate,
    SystemModstamp,
    /// OwnerId default, CreatedById, LastModifiedById: the connected app's run-as user.
    RunningUser,
    /// A read-only field this emulator never sets (conversion, activity, Data.com fields).
    AlwaysNull,
}

/// One field of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDef {
    pub name: String,
    pub label: String,
    pub field_type: FieldType,
    /// Characters for text fields, digits for `int`, 0 otherwise.
    pub length: u32,
    pub precision: u32,
    pub scale: u32,
    /// Can be set by create and update requests.
    pub writable: bool,
    /// Must be non-blank after create or update (LastName, Company).
    pub required: bool,
    pub default_value: Option<Value>,
    pub picklist_values: Vec<String>,
    pub restricted_picklist: bool,
    pub custom: bool,
    pub external_id: bool,
    pub computed: Option<Computed>,
    pub reference_to: Option<&'static str>,
}

impl FieldDef {
    fn standard(name: &str, label: &str, field_type: FieldType, length: u32) -> Self {
        FieldDef {
            name: name.to_owned(),
            label: label.to_owned(),
            field_type,
            length,
            precision: 0,
            scale: 0,
            writable: true,
            required: false,
            default_value: None,
            picklist_values: Vec::new(),
            restricted_picklist: false,
            custom: false,
            external_id: false,
            computed: None,
            reference_to: None,
        }
    }

    fn read_only(mut self, computed: Computed) -> Self {
        self.writable = false;
        self.computed = Some(computed);
        self
    }

    fn required(mut self) -> Self {
        self.required = true;
        self
    }

    fn picklist(mut self, values: &[&str], restricted: bool) -> Self {
        self.picklist_values = values.iter().map(|v| (*v).to_owned()).collect();
        self.restricted_picklist = restricted;
        self
    }

    fn number(mut self, precision: u32, scale: u32) -> Self {
        self.precision = precision;
        self.scale = scale;
        self
    }

    fn default_value(mut self, value: Value) -> Self {
        self.default_value = Some(value);
        self
    }

    fn reference(mut self, to: &'static str) -> Self {
        self.reference_to = Some(to);
        self
    }

    /// Whether the field holds a value a request can set and the store keeps.
    pub fn is_stored(&self) -> bool {
        self.computed.is_none()
    }

    /// The field as one entry of a describe result.
    pub fn describe(&self) -> Value {
        let byte_length = if self.field_type.is_text() {
            self.length * 3
        } else {
            0
        };
        let picklist_values: Vec<Value> = self
            .picklist_values
            .iter()
            .map(|value| {
                serde_json::json!({
                    "active": true,
                    "defaultValue": self.default_value.as_ref().and_then(Value::as_str) == Some(value.as_str()),
                    "label": value,
                    "validFor": null,
                    "value": value,
                })
            })
            .collect();
        serde_json::json!({
            "name": self.name,
            "label": self.label,
            "type": self.field_type.describe_name(),
            "length": if self.field_type.is_text() { self.length } else { 0 },
            "byteLength": byte_length,
            "digits": if self.field_type == FieldType::Int { self.length } else { 0 },
            "precision": self.precision,
            "scale": self.scale,
            "nillable": !self.required && self.field_type != FieldType::Boolean && self.field_type != FieldType::Id,
            "createable": self.writable,
            "updateable": self.writable,
            "defaultedOnCreate": self.default_value.is_some() || matches!(self.computed, Some(Computed::Id | Computed::RunningUser | Computed::CreatedDate | Computed::LastModifiedDate | Computed::SystemModstamp | Computed::IsDeleted)),
            "defaultValue": self.default_value,
            "custom": self.custom,
            "externalId": self.external_id,
            "idLookup": self.external_id || self.field_type == FieldType::Id || self.name == "Email",
            "unique": false,
            "caseSensitive": false,
            "filterable": self.field_type != FieldType::Address && self.field_type != FieldType::TextArea,
            "sortable": self.field_type != FieldType::Address && self.field_type != FieldType::TextArea,
            "picklistValues": picklist_values,
            "restrictedPicklist": self.restricted_picklist,
            "referenceTo": self.reference_to.map(|to| vec![to]).unwrap_or_default(),
            "relationshipName": self.reference_to.map(|_| self.name.trim_end_matches("Id").to_owned()),
            "soapType": self.field_type.soap_type(),
            "calculated": self.name == "Name",
            "compoundFieldName": match self.name.as_str() {
                "Street" | "City" | "State" | "PostalCode" | "Country" | "Latitude" | "Longitude" | "GeocodeAccuracy" => Some("Address"),
                "FirstName" | "LastName" | "Salutation" => Some("Name"),
                _ => None,
            },
        })
    }
}

/// Position of a field in its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldIndex(pub usize);

/// A custom field as given on the command line: `Name__c:type[:argument]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CustomFieldSpec {
    pub name: String,
    pub kind: CustomFieldKind,
    #[serde(default)]
    pub external_id: bool,
}

/// The types a custom field may be declared with.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CustomFieldKind {
    Text {
        length: u32,
    },
    TextArea {
        length: u32,
    },
    Email,
    Phone,
    Url,
    Checkbox,
    Number,
    Currency,
    Date,
    DateTime,
    Picklist {
        values: Vec<String>,
        restricted: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CustomFieldError {
    #[error(
        "custom field `{0}`: the name must be letters, digits and single underscores, starting with a letter and ending in __c"
    )]
    BadName(String),
    #[error(
        "custom field `{spec}`: unknown type `{field_type}` (string, textarea, email, phone, url, boolean, number, currency, date, datetime, picklist, restricted-picklist)"
    )]
    UnknownType { spec: String, field_type: String },
    #[error("custom field `{spec}`: `{argument}` is not a valid length (1..=131072)")]
    BadLength { spec: String, argument: String },
    #[error(
        "custom field `{0}`: a picklist needs its values, e.g. `Stage__c:picklist:Lead|MQL|SQL`"
    )]
    MissingPicklistValues(String),
    #[error("custom field `{0}` is declared twice or clashes with a standard field")]
    Duplicate(String),
    #[error("external-id field `{0}` must be text, email or number")]
    BadExternalIdType(String),
}

impl CustomFieldSpec {
    /// Parses `Lead_Stage__c:string:255`, `Score__c:number`, `Stage__c:restricted-picklist:Lead|MQL`.
    pub fn parse(spec: &str) -> Result<Self, CustomFieldError> {
        let mut parts = spec.splitn(3, ':');
        let name = parts.next().unwrap_or_default().trim().to_owned();
        let field_type = parts.next().unwrap_or("string").trim().to_ascii_lowercase();
        let argument = parts.next().map(str::trim);
        if !is_custom_field_name(&name) {
            return Err(CustomFieldError::BadName(name));
        }
        let length = |default: u32| -> Result<u32, CustomFieldError> {
            match argument {
                None => Ok(default),
                Some(text) => text
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=131_072).contains(n))
                    .ok_or_else(|| CustomFieldError::BadLength {
                        spec: spec.to_owned(),
                        argument: text.to_owned(),
                    }),
            }
        };
        let picklist = |restricted: bool| -> Result<CustomFieldKind, CustomFieldError> {
            let values: Vec<String> = argument
                .unwrap_or_default()
                .split('|')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect();
            if values.is_empty() {
                return Err(CustomFieldError::MissingPicklistValues(spec.to_owned()));
            }
            Ok(CustomFieldKind::Picklist { values, restricted })
        };
        let kind = match field_type.as_str() {
            "string" | "text" => CustomFieldKind::Text {
                length: length(255)?,
            },
            "textarea" => CustomFieldKind::TextArea {
                length: length(32_768)?,
            },
            "email" => CustomFieldKind::Email,
            "phone" => CustomFieldKind::Phone,
            "url" => CustomFieldKind::Url,
            "boolean" | "checkbox" => CustomFieldKind::Checkbox,
            "number" | "double" => CustomFieldKind::Number,
            "currency" => CustomFieldKind::Currency,
            "date" => CustomFieldKind::Date,
            "datetime" => CustomFieldKind::DateTime,
            "picklist" => picklist(false)?,
            "restricted-picklist" => picklist(true)?,
            _ => {
                return Err(CustomFieldError::UnknownType {
                    spec: spec.to_owned(),
                    field_type,
                });
            }
        };
        Ok(CustomFieldSpec {
            name,
            kind,
            external_id: false,
        })
    }

    fn to_field(&self) -> FieldDef {
        // `Lead_Stage__c` is labelled "Lead Stage", which is what its error messages say.
        let label = self.name.trim_end_matches("__c").replace('_', " ");
        let (field_type, length) = match &self.kind {
            CustomFieldKind::Text { length } => (FieldType::String, *length),
            CustomFieldKind::TextArea { length } => (FieldType::TextArea, *length),
            CustomFieldKind::Email => (FieldType::Email, 80),
            CustomFieldKind::Phone => (FieldType::Phone, 40),
            CustomFieldKind::Url => (FieldType::Url, 255),
            CustomFieldKind::Checkbox => (FieldType::Boolean, 0),
            CustomFieldKind::Number => (FieldType::Double, 0),
            CustomFieldKind::Currency => (FieldType::Currency, 0),
            CustomFieldKind::Date => (FieldType::Date, 0),
            CustomFieldKind::DateTime => (FieldType::DateTime, 0),
            CustomFieldKind::Picklist { .. } => (FieldType::Picklist, 255),
        };
        let mut field = FieldDef::standard(&self.name, &label, field_type, length);
        field.custom = true;
        field.external_id = self.external_id;
        if matches!(field_type, FieldType::Double | FieldType::Currency) {
            field = field.number(
                18,
                if field_type == FieldType::Currency {
                    2
                } else {
                    0
                },
            );
        }
        if field_type == FieldType::Boolean {
            field.default_value = Some(Value::Bool(false));
        }
        if let CustomFieldKind::Picklist { values, restricted } = &self.kind {
            field.picklist_values = values.clone();
            field.restricted_picklist = *restricted;
        }
        field
    }
}

fn is_custom_field_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix("__c") else {
        return false;
    };
    let mut chars = stem.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !stem.contains("__")
        && !stem.ends_with('_')
}

/// The Lead object's fields, standard then custom, with case-insensitive lookup.
#[derive(Debug, Clone)]
pub struct LeadSchema {
    fields: Vec<FieldDef>,
    by_lower_name: HashMap<String, FieldIndex>,
}

/// Lead statuses of the default standard value set.
pub const LEAD_STATUSES: [&str; 4] = [
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
];
pub const DEFAULT_LEAD_STATUS: &str = "Open - Not Contacted";

impl LeadSchema {
    /// The standard Lead fields in the order a real org returns them, then `custom`.
    pub fn new(custom: &[CustomFieldSpec]) -> Result<Self, CustomFieldError> {
        use FieldType as T;
        let std = FieldDef::standard;
        let mut fields = vec![
            std("Id", "Lead ID", T::Id, 18).read_only(Computed::Id),
            std("IsDeleted", "Deleted", T::Boolean, 0).read_only(Computed::IsDeleted),
            std("MasterRecordId", "Master Record ID", T::Reference, 18)
                .read_only(Computed::AlwaysNull)
                .reference("Lead"),
            std("LastName", "Last Name", T::String, 80).required(),
            std("FirstName", "First Name", T::String, 40),
            std("Salutation", "Salutation", T::Picklist, 40)
                .picklist(&["Mr.", "Ms.", "Mrs.", "Dr.", "Prof."], false),
            std("Name", "Full Name", T::String, 121).read_only(Computed::Name),
            std("Title", "Title", T::String, 128),
            std("Company", "Company", T::String, 255).required(),
            std("Street", "Street", T::TextArea, 255),
            std("City", "City", T::String, 40),
            std("State", "State/Province", T::String, 80),
            std("PostalCode", "Zip/Postal Code", T::String, 20),
            std("Country", "Country", T::String, 80),
            std("Latitude", "Latitude", T::Double, 0).number(18, 15),
            std("Longitude", "Longitude", T::Double, 0).number(18, 15),
            std("GeocodeAccuracy", "Geocode Accuracy", T::Picklist, 40).picklist(
                &[
                    "Address",
                    "NearAddress",
                    "Block",
                    "Street",
                    "ExtendedZip",
                    "Zip",
                    "Neighborhood",
                    "City",
                    "County",
                    "State",
                    "Unknown",
                ],
                true,
            ),
            std("Address", "Address", T::Address, 0).read_only(Computed::Address),
            std("Phone", "Phone", T::Phone, 40),
            std("MobilePhone", "Mobile Phone", T::Phone, 40),
            std("Fax", "Fax", T::Phone, 40),
            std("Email", "Email", T::Email, 80),
            std("Website", "Website", T::Url, 255),
            std("PhotoUrl", "Photo URL", T::Url, 255).read_only(Computed::PhotoUrl),
            std("Description", "Description", T::TextArea, 32_000),
            std("LeadSource", "Lead Source", T::Picklist, 255).picklist(
                &[
                    "Web",
                    "Phone Inquiry",
                    "Partner Referral",
                    "Purchased List",
                    "Other",
                ],
                false,
            ),
            std("Status", "Status", T::Picklist, 255)
                .picklist(&LEAD_STATUSES, false)
                .default_value(Value::String(DEFAULT_LEAD_STATUS.to_owned())),
            std("Industry", "Industry", T::Picklist, 255),
            std("Rating", "Rating", T::Picklist, 255).picklist(&["Hot", "Warm", "Cold"], false),
            std("AnnualRevenue", "Annual Revenue", T::Currency, 0).number(18, 0),
            std("NumberOfEmployees", "Employees", T::Int, 8),
            std("OwnerId", "Owner ID", T::Reference, 18).reference("User"),
            std("IsConverted", "Converted", T::Boolean, 0).read_only(Computed::AlwaysNull),
            std("ConvertedDate", "Converted Date", T::Date, 0).read_only(Computed::AlwaysNull),
            std(
                "ConvertedAccountId",
                "Converted Account ID",
                T::Reference,
                18,
            )
            .read_only(Computed::AlwaysNull)
            .reference("Account"),
            std(
                "ConvertedContactId",
                "Converted Contact ID",
                T::Reference,
                18,
            )
            .read_only(Computed::AlwaysNull)
            .reference("Contact"),
            std(
                "ConvertedOpportunityId",
                "Converted Opportunity ID",
                T::Reference,
                18,
            )
            .read_only(Computed::AlwaysNull)
            .reference("Opportunity"),
            std("IsUnreadByOwner", "Unread By Owner", T::Boolean, 0)
                .default_value(Value::Bool(true)),
            std("CreatedDate", "Created Date", T::DateTime, 0).read_only(Computed::CreatedDate),
            std("CreatedById", "Created By ID", T::Reference, 18)
                .read_only(Computed::RunningUser)
                .reference("User"),
            std("LastModifiedDate", "Last Modified Date", T::DateTime, 0)
                .read_only(Computed::LastModifiedDate),
            std("LastModifiedById", "Last Modified By ID", T::Reference, 18)
                .read_only(Computed::RunningUser)
                .reference("User"),
            std("SystemModstamp", "System Modstamp", T::DateTime, 0)
                .read_only(Computed::SystemModstamp),
            std("LastActivityDate", "Last Activity", T::Date, 0).read_only(Computed::AlwaysNull),
            std("LastViewedDate", "Last Viewed Date", T::DateTime, 0)
                .read_only(Computed::AlwaysNull),
            std("LastReferencedDate", "Last Referenced Date", T::DateTime, 0)
                .read_only(Computed::AlwaysNull),
            std("Jigsaw", "Data.com Key", T::String, 20),
            std("JigsawContactId", "Jigsaw Contact ID", T::String, 20)
                .read_only(Computed::AlwaysNull),
            std("CleanStatus", "Clean Status", T::Picklist, 40)
                .picklist(
                    &[
                        "Matched",
                        "Different",
                        "Acknowledged",
                        "NotFound",
                        "Inactive",
                        "Pending",
                        "SelectMatch",
                        "Skipped",
                    ],
                    true,
                )
                .default_value(Value::String("Pending".to_owned())),
            std("CompanyDunsNumber", "Company D-U-N-S Number", T::String, 9),
            std("DandbCompanyId", "D&B Company ID", T::Reference, 18)
                .read_only(Computed::AlwaysNull)
                .reference("DandBCompany"),
            std("EmailBouncedReason", "Email Bounced Reason", T::String, 255),
            std("EmailBouncedDate", "Email Bounced Date", T::DateTime, 0),
            std("IndividualId", "Individual ID", T::Reference, 18)
                .read_only(Computed::AlwaysNull)
                .reference("Individual"),
        ];
        fields.extend(custom.iter().map(CustomFieldSpec::to_field));
        for field in &fields {
            if field.external_id && !matches!(field.field_type, T::String | T::Email | T::Double) {
                return Err(CustomFieldError::BadExternalIdType(field.name.clone()));
            }
        }
        let mut by_lower_name = HashMap::with_capacity(fields.len());
        for (index, field) in fields.iter().enumerate() {
            if by_lower_name
                .insert(field.name.to_ascii_lowercase(), FieldIndex(index))
                .is_some()
            {
                return Err(CustomFieldError::Duplicate(field.name.clone()));
            }
        }
        Ok(LeadSchema {
            fields,
            by_lower_name,
        })
    }

    /// Field names are case-insensitive on input (Braze sends `firstName`, nforce lower-cases all).
    pub fn lookup(&self, name: &str) -> Option<FieldIndex> {
        if let Some(index) = self.by_lower_name.get(name) {
            return Some(*index);
        }
        self.by_lower_name.get(&name.to_ascii_lowercase()).copied()
    }

    pub fn field(&self, index: FieldIndex) -> &FieldDef {
        &self.fields[index.0]
    }

    pub fn fields(&self) -> impl Iterator<Item = (FieldIndex, &FieldDef)> {
        self.fields
            .iter()
            .enumerate()
            .map(|(index, field)| (FieldIndex(index), field))
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn index_of(&self, canonical_name: &str) -> Option<FieldIndex> {
        self.lookup(canonical_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_fields_up_case_insensitively() {
        let schema = LeadSchema::new(&[]).expect("standard schema is valid");
        let last_name = schema.lookup("lastName").expect("lastName is LastName");
        assert_eq!(schema.field(last_name).name, "LastName");
        assert_eq!(schema.field(last_name).length, 80);
        assert!(schema.lookup("Vorname").is_none());
    }

    #[test]
    fn parses_custom_field_specs() {
        let stage = CustomFieldSpec::parse("Lead_Stage__c:string:255").expect("valid spec");
        assert_eq!(stage.kind, CustomFieldKind::Text { length: 255 });
        let picklist =
            CustomFieldSpec::parse("Stage__c:restricted-picklist:Lead|MQL").expect("valid spec");
        assert_eq!(
            picklist.kind,
            CustomFieldKind::Picklist {
                values: vec!["Lead".into(), "MQL".into()],
                restricted: true
            }
        );
        assert!(matches!(
            CustomFieldSpec::parse("Stage"),
            Err(CustomFieldError::BadName(_))
        ));
        assert!(matches!(
            CustomFieldSpec::parse("Stage__c:blob"),
            Err(CustomFieldError::UnknownType { .. })
        ));
        assert!(matches!(
            CustomFieldSpec::parse("Stage__c:string:0"),
            Err(CustomFieldError::BadLength { .. })
        ));
        let schema = LeadSchema::new(&[stage]).expect("valid schema");
        let index = schema.lookup("lead_stage__C").expect("custom field found");
        assert_eq!(schema.field(index).label, "Lead Stage");
    }

    #[test]
    fn rejects_duplicate_custom_fields() {
        let stage = CustomFieldSpec::parse("Stage__c").expect("valid spec");
        assert!(matches!(
            LeadSchema::new(&[stage.clone(), stage]),
            Err(CustomFieldError::Duplicate(_))
        ));
    }
}
