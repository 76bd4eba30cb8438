//! `leadwire apply DIR` and `leadwire demo`: config as code, and the worked example end to end
//! against the bundled Salesforce emulator.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use leadwire_api::Permission;
use leadwire_app::App;
use leadwire_salesforce_emulator::schema::CustomFieldSpec;
use leadwire_salesforce_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig,
};
use leadwire_store::{ActivityQuery, ActivityType};
use serde_json::json;

use crate::server_cmd::DataDir;
use crate::webhooks_cmd::DeliveryArgs;

/// Where the worked example lives in a checkout.
const EXAMPLE_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/salesforce-sales-cloud"
);

#[derive(Args)]
pub struct ApplyArgs {
    /// A directory of YAML files (webhook templates, credentials, campaigns, Canvases).
    dir: PathBuf,
    /// Check every document (against the JSON Schemas in `schemas/` too) and every template
    /// (compiled and linted) without opening the database; `${env:…}` may be unset.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    data: DataDir,
}

/// Loads the bundle, printing every error with file, line and field.
fn load(
    dir: &std::path::Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<leadwire_config::Bundle> {
    leadwire_config::load_dir(dir, env).map_err(|errors| {
        for e in &errors {
            eprintln!("error: {e}");
        }
        anyhow::anyhow!(
            "{} error(s) in {}; nothing was applied",
            errors.len(),
            dir.display()
        )
    })
}

pub fn apply(args: ApplyArgs) -> anyhow::Result<()> {
    if args.check {
        return check(&args.dir);
    }
    let env = |name: &str| std::env::var(name).ok();
    let bundle = load(&args.dir, &env)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let delivery = DeliveryArgs::quiet();
        let app = App::start(args.data.app_config(&delivery, false)?).await?;
        let result = app.apply(bundle).await;
        app.stop().await;
        let applied = result?;
        for line in &applied.done {
            println!("applied {line}");
        }
        for warning in &applied.warnings {
            eprintln!("warning: {warning}");
        }
        anyhow::Ok(())
    })
}

/// `apply --check`: what `apply` would refuse, found without writing anything.
fn check(dir: &std::path::Path) -> anyhow::Result<()> {
    let bundle = leadwire_config::load_dir_with(
        dir,
        &crate::webhooks_cmd::env_or_stand_in,
        leadwire_config::Validation::TypesAndSchemas,
    )
    .map_err(|errors| {
        for e in &errors {
            eprintln!("error: {e}");
        }
        anyhow::anyhow!("{} error(s) in {}", errors.len(), dir.display())
    })?;
    let documents = bundle.credentials.len()
        + bundle.templates.len()
        + bundle.campaigns.len()
        + bundle.canvases.len();
    let instances = leadwire_salesforce::target::Instances::new(&[] as &[String]);
    let (errors, warnings) = crate::webhooks_cmd::check_templates(bundle.templates, &instances);
    if errors > 0 {
        anyhow::bail!("{errors} template(s) in {} cannot be saved", dir.display());
    }
    println!("checked {documents} document(s): no errors, {warnings} warning(s)");
    Ok(())
}

#[derive(Args)]
pub struct DemoArgs {
    /// End after the summary instead of serving until Ctrl-C.
    #[arg(long)]
    exit: bool,
    /// Address for leadwire's REST API.
    #[arg(long, default_value = "127.0.0.1:4000")]
    listen: SocketAddr,
    /// Keep state here instead of a fresh temporary directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The example to apply.
    #[arg(long, default_value = EXAMPLE_DIR)]
    example: PathBuf,
}

/// The demo's users: two who become leads, one with no company (Salesforce requires one), one
/// without an email (no lead), and the first one again (no second lead).
fn demo_users() -> Vec<serde_json::Value> {
    vec![
        json!({"external_id": "demo-1", "first_name": "José", "last_name": "Müller", "email": "jose@example.com", "company": "Acme Portugal", "lead_score": 12, "lead_stage": "Lead"}),
        json!({"external_id": "demo-2", "first_name": "민준", "last_name": "김", "email": "minjun@example.kr", "company": "리드와이어 주식회사", "lead_score": 30, "lead_stage": "Lead"}),
        json!({"external_id": "demo-3", "first_name": "Ana", "last_name": "Souza", "email": "ana@example.com.br"}),
        json!({"external_id": "demo-4", "first_name": "Lena", "last_name": "Vogel", "company": "Vogel GmbH"}),
        json!({"external_id": "demo-1", "email": "jose@example.com"}),
    ]
}

pub fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run_demo(args))
}

async fn run_demo(args: DemoArgs) -> anyhow::Result<()> {
    let data_dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("leadwire-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;

    // 1. The bundled Salesforce, over HTTPS like the real one.
    let mut sf_config = EmulatorConfig::loopback_with_https();
    sf_config
        .custom_fields
        .push(CustomFieldSpec::parse("Lead_Stage__c:string:255").context("custom field")?);
    let emulator = Emulator::start(sf_config)
        .await
        .context("starting the Salesforce emulator")?;
    let instance = emulator
        .https_url()
        .context("the emulator has no HTTPS address")?;
    let ca_path = data_dir.join("salesforce-emulator-ca.pem");
    std::fs::write(&ca_path, emulator.ca_pem().unwrap_or_default())
        .context("writing the emulator's CA")?;

    // 2. leadwire on the embedded default, trusting the emulator.
    let data = DataDir {
        data_dir: data_dir.clone(),
        database_url: None,
        database_schema: "public".into(),
        secret_key_file: None,
    };
    let mut delivery = DeliveryArgs::quiet();
    delivery.ca_cert = Some(ca_path.clone());
    delivery.allow_hosts = vec!["localhost".into(), "127.0.0.1".into()];
    delivery.salesforce_instances = vec![instance.clone()];
    let app = App::start(data.app_config(&delivery, true)?).await?;

    // 3. The worked example, with the emulator as the org.
    let env = |name: &str| match name {
        "SALESFORCE_INSTANCE_URL" => Some(instance.clone()),
        "SALESFORCE_CLIENT_ID" => Some(DEFAULT_CLIENT_ID.to_string()),
        "SALESFORCE_CLIENT_SECRET" => Some(DEFAULT_CLIENT_SECRET.to_string()),
        other => std::env::var(other).ok(),
    };
    let bundle = load(&args.example, &env)?;
    let applied = app.apply(bundle).await?;
    let api = app
        .serve_api(args.listen, leadwire_api::ApiConfig::default())
        .await?;
    let key = app
        .store
        .create_api_key(
            "demo".into(),
            [
                Permission::UsersTrack,
                Permission::UsersExportIds,
                Permission::TriggersRead,
                Permission::TemplatesRead,
                Permission::ActivityRead,
                Permission::CampaignsRead,
                Permission::CampaignsTriggerSend,
            ]
            .map(|p| p.as_str().to_owned())
            .to_vec(),
        )
        .await?;

    println!("leadwire demo");
    println!(
        "  Salesforce emulator  {instance}  (CA certificate: {})",
        ca_path.display()
    );
    println!("  leadwire API         {}  (API key: {key})", api.url());
    println!("  data                 {}", data_dir.display());
    println!("  applied              {}", applied.done.join(", "));
    for warning in &applied.warnings {
        println!("  warning              {warning}");
    }

    // 4. Users in through the REST API, as a product would send them.
    let http = reqwest::Client::new();
    let users = demo_users();
    for user in &users {
        let response = http
            .post(format!("{}/users/track", api.url()))
            .bearer_auth(&key)
            .json(&json!({"attributes": [user]}))
            .send()
            .await
            .context("POST /users/track")?;
        anyhow::ensure!(
            response.status().is_success(),
            "/users/track answered {}: {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }
    let mut settled = app.settle(Duration::from_secs(60)).await?;
    // The created leads' ids are on the profiles now: a delivery's write-back commits with
    // its settle.

    // 4b. Engagement events: the Lead Score Points Canvas adds 25 points per event, and the Lead
    // Scoring Canvas moves whoever crosses 50 to MQL and updates their Salesforce lead.
    // demo-1 (12) goes to 37 and stays a Lead; demo-2 (30) goes to 55 and becomes an MQL.
    let events = json!({"events": [
        {"external_id": "demo-1", "name": "webinar_registered", "time": chrono::Utc::now().to_rfc3339()},
        {"external_id": "demo-2", "name": "pricing_page_viewed", "time": chrono::Utc::now().to_rfc3339()}
    ]});
    let response = http
        .post(format!("{}/users/track", api.url()))
        .bearer_auth(&key)
        .json(&events)
        .send()
        .await
        .context("POST /users/track")?;
    anyhow::ensure!(
        response.status().is_success(),
        "/users/track answered {}: {}",
        response.status(),
        response.text().await.unwrap_or_default()
    );
    settled &= app.settle(Duration::from_secs(60)).await?;

    // 5. What happened.
    let failures = app
        .webhooks
        .activity(ActivityQuery {
            kind: Some(ActivityType::Failed),
            ..ActivityQuery::default()
        })
        .await?;
    let leads = emulator.leads();
    println!();
    println!(
        "  users sent through /users/track   {} requests for {} users",
        users.len(),
        4
    );
    println!("  leads created in Salesforce       {}", leads.len());
    for lead in &leads {
        println!(
            "    {} {} {} <{}> at {}",
            lead["Id"].as_str().unwrap_or("?"),
            lead["FirstName"].as_str().unwrap_or(""),
            lead["LastName"].as_str().unwrap_or(""),
            lead["Email"].as_str().unwrap_or(""),
            lead["Company"].as_str().unwrap_or("")
        );
    }
    let mql = leads.iter().filter(|l| l["Lead_Stage__c"] == "MQL").count();
    println!("  leads moved to MQL                {mql}");
    println!("  failures                          {}", failures.len());
    for f in &failures {
        println!("    user {}: {}", f.row.user_id, f.row.message);
    }
    if !settled {
        println!("  (some sends were still in flight after 60 s)");
    }
    if args.exit {
        api.shutdown().await;
        app.stop().await;
        emulator.shutdown().await;
        if args.data_dir.is_none() {
            // A fresh temporary directory was ours; `--data-dir` keeps state for inspection.
            let _ = std::fs::remove_dir_all(&data_dir);
        }
        return Ok(());
    }
    println!();
    println!(
        "Serving until Ctrl-C. Try: curl -H 'Authorization: Bearer {key}' {}/activity",
        api.url()
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    api.shutdown().await;
    app.stop().await;
    emulator.shutdown().await;
    Ok(())
}
