//! The worked example in `examples/salesforce-sales-cloud/` loads without errors.

use std::path::PathBuf;

#[test]
fn the_worked_example_loads() {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/salesforce-sales-cloud");
    let env = |name: &str| match name {
        "SALESFORCE_INSTANCE_URL" => Some("https://acme.my.salesforce.com".to_string()),
        "SALESFORCE_CLIENT_ID" | "SALESFORCE_CLIENT_SECRET" => Some("x".to_string()),
        _ => None,
    };
    let bundle = leadwire_config::load_dir(&dir, &env).unwrap_or_else(|e| {
        panic!(
            "{}",
            e.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    assert_eq!(bundle.credentials.len(), 1);
    assert_eq!(bundle.templates.len(), 3);
    assert_eq!(bundle.campaigns.len(), 1);
    let mut canvases: Vec<&str> = bundle
        .canvases
        .iter()
        .map(|(_, c)| c.name.as_str())
        .collect();
    canvases.sort();
    assert_eq!(canvases, ["Lead Score Points", "Lead Scoring Canvas"]);
    assert_eq!(
        bundle.campaigns[0].1.template,
        "Salesforce Sales Cloud > Create Lead"
    );
    let create = &bundle
        .templates
        .iter()
        .find(|(p, _)| p.ends_with("create-lead.yaml"))
        .expect("create")
        .1;
    assert_eq!(
        create["url"],
        "https://acme.my.salesforce.com/services/data/v60.0/sobjects/Lead/"
    );
    assert_eq!(create["body"]["firstName"], "{{${first_name}}}");
}
