//! Which fields an sObject has: from the org's describe call when the caller could make it, else
//! the built-in list of the standard Lead fields.
//!
//! Salesforce matches field names case-insensitively (`firstName` is FirstName) but nothing else
//! about them: an unknown name rejects the whole record with `INVALID_FIELD`. So the linter asks
//! [`FieldList::accepts`], and when the answer is no, [`FieldList::suggest`] says which field was
//! meant: a translated name, the same name written another way, a label, or a misspelling.

use std::borrow::Cow;

use serde_json::Value;

use crate::translations::{self, Translation};

/// One field of an sObject, as describe reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldInfo {
    /// The API name (`FirstName`, `Lead_Stage__c`).
    pub name: String,
    /// The label in the org's language (`First Name`), when known.
    pub label: Option<String>,
    /// Describe's type name (`string`, `email`, `picklist`, `reference`…).
    pub field_type: String,
    pub createable: bool,
    pub updateable: bool,
    /// A create without it fails with `REQUIRED_FIELD_MISSING`: describe's
    /// `createable && !nillable && !defaultedOnCreate`. On Lead: LastName and Company.
    pub required_on_create: bool,
}

/// Where a field list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldSource {
    /// The org's own describe result: complete, custom fields included.
    Describe,
    /// The standard fields only: any custom (`__c`) name may exist in the org.
    BuiltIn,
}

/// The fields of one sObject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldList {
    pub object: String,
    pub fields: Vec<FieldInfo>,
    pub source: FieldSource,
}

/// A field [`FieldList::suggestion`] thinks was meant, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion<'a> {
    pub field: &'a FieldInfo,
    pub reason: SuggestionReason,
}

/// Why a name was taken for a field, in the order [`FieldList::suggestion`] tries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuggestionReason {
    /// A translation of the field's name (`Vorname` is German for FirstName).
    Translation(Translation),
    /// The same name with other case, separators or accents (`first_name`), or a common English
    /// synonym of it (`email_address`, `zip`).
    Spelling,
    /// The field's label (`Zip/Postal Code`).
    Label,
    /// A near miss: at most two letters off (`Compnay`).
    Typo,
}

impl FieldList {
    /// The standard Lead fields, in the order describe lists them.
    ///
    /// Labels, types and flags follow Salesforce's Lead reference; a few fields that exist only
    /// when the org turns a feature on (record types, multiple currencies, state and country
    /// picklists) are listed too, so a template using them is not called wrong.
    pub fn lead_builtin() -> FieldList {
        // (name, label, type, writable); LastName and Company are the required ones.
        const LEAD: &[(&str, &str, &str, bool)] = &[
            ("Id", "Lead ID", "id", false),
            ("IsDeleted", "Deleted", "boolean", false),
            ("MasterRecordId", "Master Record ID", "reference", false),
            ("LastName", "Last Name", "string", true),
            ("FirstName", "First Name", "string", true),
            ("Salutation", "Salutation", "picklist", true),
            ("MiddleName", "Middle Name", "string", true),
            ("Suffix", "Suffix", "string", true),
            ("Name", "Full Name", "string", false),
            ("RecordTypeId", "Record Type ID", "reference", true),
            ("Title", "Title", "string", true),
            ("Company", "Company", "string", true),
            ("Street", "Street", "textarea", true),
            ("City", "City", "string", true),
            ("State", "State/Province", "string", true),
            ("PostalCode", "Zip/Postal Code", "string", true),
            ("Country", "Country", "string", true),
            ("StateCode", "State/Province Code", "picklist", true),
            ("CountryCode", "Country Code", "picklist", true),
            ("Latitude", "Latitude", "double", true),
            ("Longitude", "Longitude", "double", true),
            ("GeocodeAccuracy", "Geocode Accuracy", "picklist", true),
            ("Address", "Address", "address", false),
            ("Phone", "Phone", "phone", true),
            ("MobilePhone", "Mobile Phone", "phone", true),
            ("Fax", "Fax", "phone", true),
            ("Email", "Email", "email", true),
            ("Website", "Website", "url", true),
            ("PhotoUrl", "Photo URL", "url", false),
            ("Description", "Description", "textarea", true),
            ("LeadSource", "Lead Source", "picklist", true),
            ("Status", "Lead Status", "picklist", true),
            ("Industry", "Industry", "picklist", true),
            ("Rating", "Rating", "picklist", true),
            ("CurrencyIsoCode", "Lead Currency", "picklist", true),
            ("AnnualRevenue", "Annual Revenue", "currency", true),
            ("NumberOfEmployees", "Employees", "int", true),
            ("OwnerId", "Owner ID", "reference", true),
            ("HasOptedOutOfEmail", "Email Opt Out", "boolean", true),
            ("IsConverted", "Converted", "boolean", false),
            ("ConvertedDate", "Converted Date", "date", false),
            (
                "ConvertedAccountId",
                "Converted Account ID",
                "reference",
                false,
            ),
            (
                "ConvertedContactId",
                "Converted Contact ID",
                "reference",
                false,
            ),
            (
                "ConvertedOpportunityId",
                "Converted Opportunity ID",
                "reference",
                false,
            ),
            ("IsUnreadByOwner", "Unread By Owner", "boolean", true),
            ("CreatedDate", "Created Date", "datetime", false),
            ("CreatedById", "Created By ID", "reference", false),
            ("LastModifiedDate", "Last Modified Date", "datetime", false),
            (
                "LastModifiedById",
                "Last Modified By ID",
                "reference",
                false,
            ),
            ("SystemModstamp", "System Modstamp", "datetime", false),
            ("LastActivityDate", "Last Activity", "date", false),
            ("DoNotCall", "Do Not Call", "boolean", true),
            ("HasOptedOutOfFax", "Fax Opt Out", "boolean", true),
            ("LastViewedDate", "Last Viewed Date", "datetime", false),
            (
                "LastReferencedDate",
                "Last Referenced Date",
                "datetime",
                false,
            ),
            ("Jigsaw", "Data.com Key", "string", true),
            ("JigsawContactId", "Jigsaw Contact ID", "string", false),
            ("CleanStatus", "Clean Status", "picklist", true),
            (
                "CompanyDunsNumber",
                "Company D-U-N-S Number",
                "string",
                true,
            ),
            ("DandbCompanyId", "D&B Company ID", "reference", true),
            ("EmailBouncedReason", "Email Bounced Reason", "string", true),
            ("EmailBouncedDate", "Email Bounced Date", "datetime", true),
            ("IndividualId", "Individual ID", "reference", true),
        ];
        let fields = LEAD
            .iter()
            .map(|&(name, label, field_type, writable)| FieldInfo {
                name: name.to_owned(),
                label: Some(label.to_owned()),
                field_type: field_type.to_owned(),
                createable: writable,
                updateable: writable,
                required_on_create: matches!(name, "LastName" | "Company"),
            })
            .collect();
        FieldList {
            object: "Lead".to_owned(),
            fields,
            source: FieldSource::BuiltIn,
        }
    }

    /// The built-in list for `object` (case-insensitive); Lead is the only one so far.
    pub fn builtin(object: &str) -> Option<FieldList> {
        object
            .eq_ignore_ascii_case("Lead")
            .then(FieldList::lead_builtin)
    }

    /// The list to check `object`'s fields against: `describe` when it is that object's, else
    /// the built-in one; `None` when neither is known (no field checks then).
    pub fn for_object<'a>(
        object: &str,
        describe: Option<&'a FieldList>,
    ) -> Option<Cow<'a, FieldList>> {
        match describe {
            Some(list) if list.object.eq_ignore_ascii_case(object) => Some(Cow::Borrowed(list)),
            _ => FieldList::builtin(object).map(Cow::Owned),
        }
    }

    /// Reads a describe result (`GET …/sobjects/Lead/describe`): `name`, and `fields[]` with
    /// `name`, `label`, `type`, `createable`, `updateable`, `nillable`, `defaultedOnCreate`.
    ///
    /// A field without a name is an error (it would match nothing); missing flags read as
    /// describe's safe side: not writable, nillable, so never required.
    pub fn from_describe(json: &Value) -> Result<FieldList, String> {
        let object = json
            .get("name")
            .and_then(Value::as_str)
            .ok_or("the describe result has no object 'name'")?;
        let entries = json
            .get("fields")
            .and_then(Value::as_array)
            .ok_or("the describe result has no 'fields' list")?;
        let mut fields = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let name = entry
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| format!("field {index} of the describe result has no 'name'"))?;
            let flag =
                |key: &str, absent: bool| entry.get(key).and_then(Value::as_bool).unwrap_or(absent);
            let createable = flag("createable", false);
            fields.push(FieldInfo {
                name: name.to_owned(),
                label: entry
                    .get("label")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                field_type: entry
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                createable,
                updateable: flag("updateable", false),
                required_on_create: createable
                    && !flag("nillable", true)
                    && !flag("defaultedOnCreate", false),
            });
        }
        Ok(FieldList {
            object: object.to_owned(),
            fields,
            source: FieldSource::Describe,
        })
    }

    /// The field named `name`, ignoring case as Salesforce does.
    pub fn get(&self, name: &str) -> Option<&FieldInfo> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// Whether Salesforce would take `name` as a field of this object: a known field, or, for
    /// the built-in list, any well-formed custom field name (`Lead_Stage__c`), since only the
    /// org's describe knows its custom fields.
    pub fn accepts(&self, name: &str) -> bool {
        self.get(name).is_some()
            || (self.source == FieldSource::BuiltIn && is_custom_field_name(name))
    }

    /// The fields a create must set (`REQUIRED_FIELD_MISSING` otherwise).
    pub fn required_on_create(&self) -> impl Iterator<Item = &FieldInfo> {
        self.fields.iter().filter(|f| f.required_on_create)
    }

    /// The field `name` most likely means; see [`FieldList::suggestion`].
    pub fn suggest(&self, name: &str) -> Option<&FieldInfo> {
        self.suggestion(name).map(|s| s.field)
    }

    /// The field `name` most likely means, and why. Tried in order, first answer wins:
    /// the translation dictionary; the same name up to case, `_`, `-`, spaces and accents, or
    /// an English synonym (`email_address`, `zip`); a field's label; a near miss of at most
    /// one letter for names of four or five letters, two for longer ones (shorter names are
    /// too easily near everything).
    pub fn suggestion(&self, name: &str) -> Option<Suggestion<'_>> {
        if let Some(translation) = translations::translate_field(name)
            && let Some(field) = self.get(translation.means)
        {
            return Some(Suggestion {
                field,
                reason: SuggestionReason::Translation(translation),
            });
        }
        let folded = translations::fold(name);
        if folded.is_empty() {
            return None;
        }
        let synonym = SYNONYMS
            .iter()
            .find(|(words, _)| words.contains(&folded.as_str()))
            .and_then(|(_, field)| self.get(field));
        let spelled = self
            .fields
            .iter()
            .find(|f| translations::fold(&f.name) == folded)
            .or(synonym);
        if let Some(field) = spelled {
            return Some(Suggestion {
                field,
                reason: SuggestionReason::Spelling,
            });
        }
        let labelled = self.fields.iter().find(|f| {
            f.label
                .as_deref()
                .is_some_and(|l| translations::fold(l) == folded)
        });
        if let Some(field) = labelled {
            return Some(Suggestion {
                field,
                reason: SuggestionReason::Label,
            });
        }
        let length = folded.chars().count();
        let allowed = match length {
            0..=3 => return None,
            4 | 5 => 1,
            _ => 2,
        };
        let field = self
            .fields
            .iter()
            .map(|f| (distance(&folded, &translations::fold(&f.name)), f))
            .filter(|(d, _)| *d <= allowed)
            .min_by_key(|(d, _)| *d)?
            .1;
        Some(Suggestion {
            field,
            reason: SuggestionReason::Typo,
        })
    }
}

/// English words people write for a Lead field, folded (see [`translations::fold`]). Only used
/// when the field is in the list, so they do no harm on other objects.
const SYNONYMS: &[(&[&str], &str)] = &[
    (&["emailaddress", "mail", "emailid", "mailaddress"], "Email"),
    (&["fname", "first", "givenname", "forename"], "FirstName"),
    (&["lname", "last", "surname", "familyname"], "LastName"),
    (
        &[
            "companyname",
            "organization",
            "organisation",
            "org",
            "business",
            "businessname",
            "account",
            "accountname",
            "employer",
        ],
        "Company",
    ),
    (
        &[
            "phonenumber",
            "telephone",
            "tel",
            "workphone",
            "businessphone",
        ],
        "Phone",
    ),
    (
        &["mobile", "cell", "cellphone", "mobilenumber", "cellnumber"],
        "MobilePhone",
    ),
    (&["jobtitle", "position", "role"], "Title"),
    (&["sector", "vertical"], "Industry"),
    (&["town", "locality"], "City"),
    (
        &["province", "region", "stateprovince", "stateorprovince"],
        "State",
    ),
    (&["zip", "zipcode", "postcode", "postal"], "PostalCode"),
    (
        &["streetaddress", "address1", "addressline1", "addressline"],
        "Street",
    ),
    (&["url", "web", "site", "homepage", "websiteurl"], "Website"),
    (&["notes", "note", "comment", "comments"], "Description"),
    (&["source", "leadorigin"], "LeadSource"),
    (&["leadstatus", "stage"], "Status"),
    (
        &[
            "employees",
            "employeecount",
            "numberemployees",
            "companysize",
        ],
        "NumberOfEmployees",
    ),
    (&["revenue", "annualrevenues"], "AnnualRevenue"),
];

/// `Name__c`, `ns__Name__c`: letters, digits and underscores, a letter first, `__c` last
/// (in any case, as Salesforce reads it).
fn is_custom_field_name(name: &str) -> bool {
    let Some(split) = name.len().checked_sub(3) else {
        return false;
    };
    let (Some(stem), Some(suffix)) = (name.get(..split), name.get(split..)) else {
        return false;
    };
    let mut chars = stem.chars();
    suffix.eq_ignore_ascii_case("__c")
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !stem.ends_with('_')
}

/// Optimal string alignment distance: edits, with swapping two neighbours counted as one
/// (`Compnay`), over characters.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Rows i-2, i-1 and i of the usual table.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translations::Language;

    fn lead() -> FieldList {
        FieldList::lead_builtin()
    }

    fn suggested(list: &FieldList, name: &str) -> Option<String> {
        list.suggest(name).map(|f| f.name.clone())
    }

    fn describe() -> FieldList {
        let json = serde_json::json!({
            "name": "Lead",
            "fields": [
                {"name": "Id", "label": "Lead ID", "type": "id", "createable": false,
                 "updateable": false, "nillable": false, "defaultedOnCreate": true},
                {"name": "LastName", "label": "Last Name", "type": "string", "createable": true,
                 "updateable": true, "nillable": false, "defaultedOnCreate": false},
                {"name": "FirstName", "label": "First Name", "type": "string", "createable": true,
                 "updateable": true, "nillable": true, "defaultedOnCreate": false},
                {"name": "Company", "label": "Company", "type": "string", "createable": true,
                 "updateable": true, "nillable": false, "defaultedOnCreate": false},
                {"name": "Status", "label": "Lead Status", "type": "picklist", "createable": true,
                 "updateable": true, "nillable": false, "defaultedOnCreate": true},
                {"name": "IsUnreadByOwner", "label": "Unread By Owner", "type": "boolean",
                 "createable": true, "updateable": true, "nillable": false,
                 "defaultedOnCreate": true},
                {"name": "Email", "label": "Email", "type": "email", "createable": true,
                 "updateable": true, "nillable": true, "defaultedOnCreate": false},
                {"name": "Lead_Stage__c", "label": "Lead Stage", "type": "picklist",
                 "createable": true, "updateable": true, "nillable": true,
                 "defaultedOnCreate": false}
            ]
        });
        FieldList::from_describe(&json).expect("describe")
    }

    #[test]
    fn builtin_lead_knows_the_standard_fields_and_requires_two() {
        let list = lead();
        assert_eq!(list.object, "Lead");
        assert_eq!(list.source, FieldSource::BuiltIn);
        let required: Vec<&str> = list.required_on_create().map(|f| f.name.as_str()).collect();
        assert_eq!(required, ["LastName", "Company"]);
        for name in [
            "FirstName",
            "firstName",
            "LASTNAME",
            "email",
            "company",
            "PostalCode",
        ] {
            assert!(list.accepts(name), "{name}");
        }
        assert_eq!(
            list.get("firstname").map(|f| f.name.as_str()),
            Some("FirstName")
        );
        let name = list.get("Name").expect("Name");
        assert!(!name.createable && !name.updateable);
        assert!(list.get("Email").is_some_and(|f| f.field_type == "email"));
        assert!(FieldList::builtin("lead").is_some());
        assert!(FieldList::builtin("Contact").is_none());
    }

    #[test]
    fn builtin_accepts_any_custom_name_describe_only_its_own() {
        let list = lead();
        assert!(list.accepts("Lead_Stage__c"));
        assert!(list.accepts("lead_stage__C"));
        assert!(list.accepts("ns__Score__c"));
        assert!(!list.accepts("Lead_Stage_c"));
        assert!(!list.accepts("__c"));
        assert!(!list.accepts("Lead Stage__c"));
        assert!(!list.accepts("Vorname"));
        let org = describe();
        assert!(org.accepts("LEAD_STAGE__C"));
        assert!(!org.accepts("Lead_Score__c"));
        assert!(!org.accepts("Phone"), "describe is the whole truth");
    }

    #[test]
    fn describe_parsing_and_required_fields() {
        let org = describe();
        assert_eq!(org.source, FieldSource::Describe);
        assert_eq!(org.fields.len(), 8);
        let required: Vec<&str> = org.required_on_create().map(|f| f.name.as_str()).collect();
        // Id is not createable, Status and IsUnreadByOwner are defaulted on create.
        assert_eq!(required, ["LastName", "Company"]);
        let stage = org.get("lead_stage__c").expect("custom");
        assert_eq!(stage.label.as_deref(), Some("Lead Stage"));
        assert_eq!(stage.field_type, "picklist");

        let minimal = FieldList::from_describe(&serde_json::json!({
            "name": "Thing__c", "fields": [{"name": "Name"}]
        }))
        .expect("minimal");
        assert_eq!(minimal.fields[0].label, None);
        assert!(!minimal.fields[0].createable && !minimal.fields[0].required_on_create);

        assert!(FieldList::from_describe(&serde_json::json!([])).is_err());
        assert!(FieldList::from_describe(&serde_json::json!({"name": "Lead"})).is_err());
        assert!(
            FieldList::from_describe(
                &serde_json::json!({"name": "Lead", "fields": [{"label": "x"}]})
            )
            .is_err()
        );
    }

    #[test]
    fn suggestions_in_order() {
        let list = lead();
        let s = list.suggestion("Vorname").expect("translation");
        assert_eq!(s.field.name, "FirstName");
        assert!(matches!(
            &s.reason,
            SuggestionReason::Translation(t) if t.languages == [Language::German]
        ));
        for (name, field) in [
            ("first_name", "FirstName"),
            ("first-name", "FirstName"),
            ("First Name", "FirstName"),
            ("LAST_NAME", "LastName"),
            ("email_address", "Email"),
            ("zip", "PostalCode"),
            ("postal_code", "PostalCode"),
            ("Zip/Postal Code", "PostalCode"),
            ("Lead Status", "Status"),
            ("Compnay", "Company"),
            ("Comapny", "Company"),
            ("Emial", "Email"),
            ("lastnme", "LastName"),
            ("Nachname", "LastName"),
            ("correo electrónico", "Email"),
        ] {
            assert_eq!(suggested(&list, name).as_deref(), Some(field), "{name}");
        }
        assert!(matches!(
            list.suggestion("first_name").map(|s| s.reason),
            Some(SuggestionReason::Spelling)
        ));
        assert!(matches!(
            list.suggestion("Zip/Postal Code").map(|s| s.reason),
            Some(SuggestionReason::Label)
        ));
        assert!(matches!(
            list.suggestion("Compnay").map(|s| s.reason),
            Some(SuggestionReason::Typo)
        ));
        // Short names are near too much to guess; unrelated names get nothing.
        assert_eq!(suggested(&list, "foo"), None);
        assert_eq!(suggested(&list, "favourite_colour"), None);
        assert_eq!(suggested(&list, ""), None);
        assert_eq!(suggested(&list, "__"), None);
    }

    #[test]
    fn suggestions_need_the_field_in_the_list() {
        let org = describe();
        assert_eq!(
            suggested(&org, "Lead_Stage_c").as_deref(),
            Some("Lead_Stage__c")
        );
        assert_eq!(
            suggested(&org, "LeadStage__c").as_deref(),
            Some("Lead_Stage__c")
        );
        assert_eq!(
            suggested(&org, "Lead_Stag__c").as_deref(),
            Some("Lead_Stage__c")
        );
        assert_eq!(
            suggested(&org, "Lead Stage").as_deref(),
            Some("Lead_Stage__c")
        );
        // Telefon is Phone, which this org's list does not have.
        assert_eq!(suggested(&org, "Telefon"), None);
        assert_eq!(suggested(&lead(), "Telefon").as_deref(), Some("Phone"));
    }

    #[test]
    fn no_translation_is_itself_a_lead_field() {
        let list = lead();
        for entry in translations::FIELDS {
            assert!(!list.accepts(entry.word), "{}", entry.word);
            assert!(list.get(entry.means).is_some(), "{}", entry.means);
        }
        for (words, field) in SYNONYMS {
            assert!(list.get(field).is_some(), "{field}");
            // An English synonym is never called a translation.
            for word in *words {
                assert_eq!(translations::field_for(word), None, "{word}");
            }
        }
    }

    #[test]
    fn edit_distance() {
        assert_eq!(distance("company", "company"), 0);
        assert_eq!(distance("compnay", "company"), 1);
        assert_eq!(distance("compan", "company"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("이메일", "이메"), 1);
    }

    #[test]
    fn describe_list_is_used_only_for_its_object() {
        let org = describe();
        assert!(matches!(
            FieldList::for_object("lead", Some(&org)),
            Some(Cow::Borrowed(_))
        ));
        assert!(
            FieldList::for_object("Lead", None).is_some_and(|l| l.source == FieldSource::BuiltIn)
        );
        assert!(FieldList::for_object("Contact", Some(&org)).is_none());
    }
}
