//! The linter against the seed pages: Braze's "Salesforce Sales Cloud" page in Portuguese,
//! Spanish, French, German and Korean, whose Create Lead and Update Lead tables had their body
//! keys and header names translated. Each template is rebuilt from the page's tables and linted
//! as leadwire would lint it after the preview rendered the URL.
//!
//! What each key or header should have been is read from its value, not from a list kept here:
//! `{{${first_name}}}` fills FirstName, `Bearer …` is the Authorization header.

use std::path::PathBuf;

use leadwire_salesforce::lint::{Finding, FindingKind, LintBody, LintInput, Location, lint};
use leadwire_salesforce::schema::FieldList;
use leadwire_salesforce::target::Instances;

const CREATE_URL: &str = "https://acme.my.salesforce.com/services/data/v60.0/sobjects/Lead/";
const UPDATE_URL: &str =
    "https://acme.my.salesforce.com/services/data/v60.0/sobjects/Lead/00Q5e00000AbCdEFGH";

/// One webhook template as a seed page's tables write it.
#[derive(Debug)]
struct Template {
    method: String,
    url: String,
    /// The body table's first header cell (`Schlüssel`, `키`): tells the page's language.
    key_heading: String,
    body: Vec<(String, String)>,
    headers: Vec<(String, String)>,
}

struct Seed {
    file: String,
    create: Template,
    update: Template,
}

fn seeds() -> Vec<Seed> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/seeds");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "txt"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).expect("seed text");
            let file = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let create = section(&text, "{#creating-lead}");
            let update = section(&text, "{#updating-lead}");
            Seed {
                create: template(&create, &file),
                update: template(&update, &file),
                file,
            }
        })
        .collect()
}

/// The lines from the `## … {#anchor}` heading to the next `## ` heading.
fn section<'t>(text: &'t str, anchor: &str) -> Vec<&'t str> {
    text.lines()
        .skip_while(|line| !(line.starts_with("## ") && line.contains(anchor)))
        .enumerate()
        .take_while(|(index, line)| *index == 0 || !line.starts_with("## "))
        .map(|(_, line)| line)
        .collect()
}

/// A section's three tables, told apart by content: the one with `POST`/`PATCH` is the
/// webhook's URL and method, the one with `application/json` the headers, the other the body.
fn template(lines: &[&str], file: &str) -> Template {
    let mut tables: Vec<Vec<&str>> = Vec::new();
    let mut in_table = false;
    for line in lines {
        let is_row = line.trim_start().starts_with('|');
        if is_row && !in_table {
            tables.push(Vec::new());
        }
        if is_row && let Some(table) = tables.last_mut() {
            table.push(line);
        }
        in_table = is_row;
    }
    assert_eq!(tables.len(), 3, "{file}: three tables per section");
    let rows: Vec<Vec<(String, String)>> = tables.iter().map(|t| table_rows(t)).collect();
    let is_method = |v: &str| v == "POST" || v == "PATCH";
    let compose = rows
        .iter()
        .position(|r| r.iter().any(|(_, v)| is_method(v)))
        .unwrap_or_else(|| panic!("{file}: no method table"));
    let headers = rows
        .iter()
        .position(|r| r.iter().any(|(_, v)| v == "application/json"))
        .unwrap_or_else(|| panic!("{file}: no header table"));
    let body = (0..3)
        .find(|i| *i != compose && *i != headers)
        .expect("a third table");
    let value_of = |test: &dyn Fn(&str) -> bool| {
        rows[compose]
            .iter()
            .find(|(_, v)| test(v))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{file}: compose table incomplete"))
    };
    Template {
        method: value_of(&|v| is_method(v)),
        url: value_of(&|v| v.contains("://")),
        key_heading: cells(tables[body][0]).0,
        body: rows[body].clone(),
        headers: rows[headers].clone(),
    }
}

/// The rows under the heading row and the `---` separator, as (first cell, rest).
fn table_rows(table: &[&str]) -> Vec<(String, String)> {
    table
        .iter()
        .skip(1)
        .map(|line| cells(line))
        .filter(|(key, value)| !is_separator(key) || !is_separator(value))
        .collect()
}

fn is_separator(cell: &str) -> bool {
    cell.chars().all(|c| matches!(c, '-' | ':' | ' '))
}

/// `| key | value |` → (key, value), each without Markdown code quotes and Jekyll's raw tags.
/// The value is everything after the first cell, so a `|` inside it (a Liquid filter) stays.
fn cells(line: &str) -> (String, String) {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let (key, value) = inner.split_once('|').unwrap_or((inner, ""));
    (clean(key), clean(value))
}

fn clean(cell: &str) -> String {
    cell.replace("{% raw %}", "")
        .replace("{% endraw %}", "")
        .trim()
        .trim_matches('`')
        .trim()
        .to_owned()
}

fn run(template: &Template, rendered_url: &str) -> Vec<Finding> {
    let instances = Instances::default();
    lint(&LintInput {
        method: &template.method,
        url_source: &template.url,
        rendered_url: Some(rendered_url),
        headers: &template.headers,
        body: LintBody::KeyValue(&template.body),
        instances: &instances,
        fields: None,
    })
}

/// The field a body value fills, read from the Braze attribute it renders.
fn field_filled_by(value: &str) -> Option<&'static str> {
    [
        ("first_name", "FirstName"),
        ("last_name", "LastName"),
        ("email", "Email"),
        ("company", "Company"),
    ]
    .into_iter()
    .find(|(attribute, _)| value.contains(attribute))
    .map(|(_, field)| field)
}

/// The header a value belongs in.
fn header_holding(value: &str) -> &'static str {
    if value.contains("Bearer") {
        "Authorization"
    } else if value.contains("application/json") {
        "Content-Type"
    } else {
        panic!("no header holds {value}")
    }
}

fn language(key_heading: &str) -> &'static str {
    match key_heading {
        "Chave" => "Portuguese",
        "Clave" => "Spanish",
        "Clé" => "French",
        "Schlüssel" => "German",
        "키" => "Korean",
        other => panic!("unknown table heading {other}"),
    }
}

type Summary = Vec<(Location, FindingKind, Option<String>)>;

fn summary(findings: &[Finding]) -> Summary {
    findings
        .iter()
        .map(|f| (f.location.clone(), f.kind, f.suggestion.clone()))
        .collect()
}

/// Every translated key and header has its finding naming the right English name and the
/// page's language; nothing else is found but the documentation's placeholders.
fn check(template: &Template, findings: &[Finding], file: &str) {
    let lead = FieldList::lead_builtin();
    let language = language(&template.key_heading);
    let mut expected = 0;
    for (key, value) in &template.body {
        let at = Location::BodyKey(key.clone());
        let found: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.location == at && f.kind == FindingKind::UnknownField)
            .collect();
        if lead.accepts(key) {
            assert!(
                found.is_empty(),
                "{file}: '{key}' is a Lead field: {found:?}"
            );
            continue;
        }
        let field = field_filled_by(value).unwrap_or_else(|| panic!("{file}: {key} = {value}"));
        assert_eq!(found.len(), 1, "{file}: '{key}'");
        assert_eq!(
            found[0].suggestion.as_deref(),
            Some(field),
            "{file}: '{key}'"
        );
        let says = format!("'{key}' is ");
        assert!(
            found[0].message.contains(&says) && found[0].message.contains(language),
            "{file}: {}",
            found[0].message
        );
        expected += 1;
    }
    for (name, value) in &template.headers {
        let header = header_holding(value);
        let at = Location::Header(name.clone());
        let found: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.location == at && f.kind == FindingKind::TranslatedHeader)
            .collect();
        if name.eq_ignore_ascii_case(header) {
            assert!(found.is_empty(), "{file}: '{name}' is English: {found:?}");
            continue;
        }
        assert_eq!(found.len(), 1, "{file}: '{name}'");
        assert_eq!(
            found[0].suggestion.as_deref(),
            Some(header),
            "{file}: '{name}'"
        );
        assert!(
            found[0].message.contains(language),
            "{file}: {}",
            found[0].message
        );
        expected += 1;
    }
    let placeholders = findings
        .iter()
        .filter(|f| f.kind == FindingKind::Placeholder)
        .count();
    assert_eq!(
        findings.len(),
        expected + placeholders,
        "{file}: nothing else: {findings:#?}"
    );
}

#[test]
fn every_seed_template_is_linted_to_the_english_names() {
    let seeds = seeds();
    assert_eq!(seeds.len(), 5, "the five translated pages");
    let mut languages: Vec<&str> = Vec::new();
    for seed in &seeds {
        assert_eq!(seed.create.method, "POST", "{}", seed.file);
        assert_eq!(seed.update.method, "PATCH", "{}", seed.file);
        assert_eq!(seed.create.body.len(), 4, "{}", seed.file);
        assert_eq!(seed.update.body.len(), 1, "{}", seed.file);
        assert_eq!(seed.create.headers.len(), 2, "{}", seed.file);
        check(&seed.create, &run(&seed.create, CREATE_URL), &seed.file);
        check(&seed.update, &run(&seed.update, UPDATE_URL), &seed.file);
        languages.push(language(&seed.create.key_heading));
    }
    languages.sort();
    assert_eq!(
        languages,
        ["French", "German", "Korean", "Portuguese", "Spanish"]
    );
}

/// The findings every seed's templates share: the My Domain placeholder in the URL, and the
/// connected app's three in the Authorization header's Connected Content call.
fn shared(authorization: &str, content_type: &str) -> (Summary, Summary) {
    let url = (Location::Url, FindingKind::Placeholder, None);
    let auth = Location::Header(authorization.to_owned());
    let placeholder = (auth.clone(), FindingKind::Placeholder, None);
    let headers = vec![
        (
            auth.clone(),
            FindingKind::TranslatedHeader,
            Some("Authorization".to_owned()),
        ),
        placeholder.clone(),
        placeholder.clone(),
        placeholder,
        (
            Location::Header(content_type.to_owned()),
            FindingKind::TranslatedHeader,
            Some("Content-Type".to_owned()),
        ),
    ];
    (vec![url], headers)
}

fn expected(authorization: &str, content_type: &str, body: &[(&str, &str)]) -> (Summary, Summary) {
    let (url, headers) = shared(authorization, content_type);
    let mut create = url.clone();
    create.extend(headers.clone());
    create.extend(body.iter().map(|(key, field)| {
        (
            Location::BodyKey((*key).to_owned()),
            FindingKind::UnknownField,
            Some((*field).to_owned()),
        )
    }));
    let mut update = url;
    update.extend(headers);
    (create, update)
}

fn seed_in(language_name: &str) -> Seed {
    seeds()
        .into_iter()
        .find(|s| language(&s.create.key_heading) == language_name)
        .unwrap_or_else(|| panic!("no {language_name} seed"))
}

#[test]
fn german_seed() {
    let seed = seed_in("German");
    let create = run(&seed.create, CREATE_URL);
    let (want_create, want_update) = expected(
        "Autorisierung",
        "Content-Typ",
        &[
            ("Vorname", "FirstName"),
            ("Nachname", "LastName"),
            ("E-Mail", "Email"),
            ("Unternehmen", "Company"),
        ],
    );
    assert_eq!(summary(&create), want_create);
    let messages: Vec<&str> = create.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "'[insert_instance_name]' is the documentation's placeholder: replace it with your \
             My Domain name, as in https://acme.my.salesforce.com",
            "'Autorisierung' is German for 'Authorization'; servers only read the English name",
            "'[insert_instance_name]' is the documentation's placeholder: replace it with your \
             My Domain name, as in https://acme.my.salesforce.com",
            "'[insert_client_id]' is the documentation's placeholder: replace it with the \
             connected app's consumer key (its client_id: Setup > App Manager > the app > View \
             > Manage Consumer Details)",
            "'[insert_client_secret]' is the documentation's placeholder: replace it with the \
             connected app's consumer secret (its client_secret, on the same page as the key)",
            "'Content-Typ' is German for 'Content-Type'; servers only read the English name",
            "Salesforce has no field 'Vorname' on Lead: 'Vorname' is German for 'FirstName'",
            "Salesforce has no field 'Nachname' on Lead: 'Nachname' is German for 'LastName'",
            "Salesforce has no field 'E-Mail' on Lead: 'E-Mail' is German for 'Email'",
            "Salesforce has no field 'Unternehmen' on Lead: 'Unternehmen' is German for 'Company'",
        ]
    );
    assert_eq!(summary(&run(&seed.update, UPDATE_URL)), want_update);
}

#[test]
fn korean_seed() {
    let seed = seed_in("Korean");
    let create = run(&seed.create, CREATE_URL);
    let (want_create, want_update) = expected(
        "승인",
        "콘텐츠-유형",
        &[
            ("이름", "FirstName"),
            ("성", "LastName"),
            ("이메일", "Email"),
            ("회사", "Company"),
        ],
    );
    assert_eq!(summary(&create), want_create);
    let translated: Vec<&str> = create
        .iter()
        .filter(|f| f.kind != FindingKind::Placeholder)
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(
        translated,
        [
            "'승인' is Korean for 'Authorization'; servers only read the English name",
            "'콘텐츠-유형' is Korean for 'Content-Type'; servers only read the English name",
            "Salesforce has no field '이름' on Lead: '이름' is Korean for 'FirstName'",
            "Salesforce has no field '성' on Lead: '성' is Korean for 'LastName'",
            "Salesforce has no field '이메일' on Lead: '이메일' is Korean for 'Email'",
            "Salesforce has no field '회사' on Lead: '회사' is Korean for 'Company'",
        ]
    );
    assert_eq!(summary(&run(&seed.update, UPDATE_URL)), want_update);
}

/// The same templates without a rendered URL: the source's Liquid record id does not stop the
/// checks, and the unfilled instance name still reads as Salesforce.
#[test]
fn seeds_without_a_preview() {
    for seed in seeds() {
        for template in [&seed.create, &seed.update] {
            let instances = Instances::default();
            let findings = lint(&LintInput {
                method: &template.method,
                url_source: &template.url,
                rendered_url: None,
                headers: &template.headers,
                body: LintBody::KeyValue(&template.body),
                instances: &instances,
                fields: None,
            });
            assert_eq!(
                summary(&findings),
                summary(&run(
                    template,
                    if template.method == "POST" {
                        CREATE_URL
                    } else {
                        UPDATE_URL
                    }
                )),
                "{}",
                seed.file
            );
        }
    }
}
