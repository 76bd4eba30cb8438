//! Connected Content credentials (`:basic_auth NAME`, `:auth_credentials NAME`): the list (never
//! a secret), create, rotate (save new secrets under the same name) and delete. Saved through the
//! [`WebhookService`] as `/credentials/create` does, so secrets are sealed before the store sees
//! them; no page ever shows one, and secret fields are never filled in.
//!
//! [`WebhookService`]: leadwire_webhooks::WebhookService

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use leadwire_webhooks::WebhookError;
use leadwire_webhooks::credentials::{CredentialInfo, NewCredential};
use maud::{Markup, html};
use serde::Deserialize;

use crate::i18n::Tr;
use crate::{Dashboard, DashboardError, FormData, Permission, Posted, Signed, page};

pub(crate) fn routes() -> Router<Dashboard> {
    Router::new()
        .route("/dashboard/credentials", get(list).post(save))
        .route("/dashboard/credentials/{name}/delete", post(delete))
}

#[derive(Deserialize)]
struct ListQuery {
    /// The credential just saved or deleted (for the notice).
    saved: Option<String>,
    deleted: Option<String>,
    /// Open the form for rotating this credential.
    rotate: Option<String>,
}

/// The credential a form describes. Header rows are `header_name`/`header_value` pairs.
fn credential(form: &FormData) -> NewCredential {
    let name = form.text("name").trim().to_owned();
    match form.text("type") {
        "token" => {
            let names = form.0.iter().filter(|(k, _)| k == "header_name");
            let values = form.0.iter().filter(|(k, _)| k == "header_value");
            NewCredential::Token {
                name,
                headers: names
                    .zip(values)
                    .filter(|((_, k), _)| !k.trim().is_empty())
                    .map(|((_, k), (_, v))| (k.trim().to_owned(), v.clone()))
                    .collect(),
                allowed_domain: Some(form.text("allowed_domain").trim().to_owned())
                    .filter(|d| !d.is_empty()),
            }
        }
        _ => NewCredential::Basic {
            name,
            username: form.text("username").to_owned(),
            password: form.text("password").to_owned(),
        },
    }
}

fn form_markup(tr: Tr<'_>, signed: &Signed, rotating: Option<&CredentialInfo>) -> Markup {
    let kind = rotating.map_or("basic", |c| c.kind);
    html! {
        form.compose method="post" action="/dashboard/credentials" id="credential-form" {
            (page::csrf(signed))
            fieldset {
                legend {
                    @match rotating {
                        Some(c) => (tr.ta("credentials-rotate-named", &[("name", c.name.clone().into())])),
                        None => (tr.t("credentials-new")),
                    }
                }
                label for="c-name" { (tr.t("column-name")) }
                @if let Some(c) = rotating {
                    input id="c-name" name="name" type="text" value=(c.name) readonly;
                } @else {
                    input id="c-name" name="name" type="text" required aria-describedby="c-name-help";
                    p.help id="c-name-help" { (tr.t("credentials-name-help")) }
                }
                div.radios role="radiogroup" aria-label=(tr.t("credentials-type")) {
                    label { input type="radio" name="type" value="basic" checked[kind == "basic"]; " " (tr.t("credentials-basic")) }
                    label { input type="radio" name="type" value="token" checked[kind == "token"]; " " (tr.t("credentials-token")) }
                }
                fieldset {
                    legend { (tr.t("credentials-basic")) }
                    label for="c-username" { (tr.t("credentials-username")) }
                    input id="c-username" name="username" type="text" autocomplete="off" value=(rotating.and_then(|c| c.username.clone()).unwrap_or_default());
                    label for="c-password" { (tr.t("credentials-password")) }
                    input id="c-password" name="password" type="password" autocomplete="new-password";
                }
                fieldset {
                    legend { (tr.t("credentials-token")) }
                    @for i in 0..2 {
                        @let name = rotating.and_then(|c| c.header_names.get(i).cloned()).unwrap_or_default();
                        label for={ "c-header-name-" (i) } { (tr.ta("compose-header-name-n", &[("n", (i + 1).into())])) }
                        input id={ "c-header-name-" (i) } name="header_name" type="text" value=(name);
                        label for={ "c-header-value-" (i) } { (tr.ta("compose-header-value-n", &[("n", (i + 1).into())])) }
                        input id={ "c-header-value-" (i) } name="header_value" type="password" autocomplete="new-password";
                    }
                    label for="c-domain" { (tr.t("credentials-allowed-domain")) }
                    input id="c-domain" name="allowed_domain" type="text" value=(rotating.and_then(|c| c.allowed_domain.clone()).unwrap_or_default());
                }
                p.help { (tr.t("credentials-never-shown")) }
                p.actions { button.primary type="submit" { (tr.t("credentials-save")) } }
            }
        }
    }
}

async fn render(
    d: &Dashboard,
    signed: &Signed,
    q: &ListQuery,
    problem: Option<String>,
) -> Result<Response, DashboardError> {
    let tr = d.tr(signed.lang());
    let credentials = d.webhooks()?.list_credentials().await?;
    let can_write = signed.can(Permission::CredentialsWrite);
    let rotating = q
        .rotate
        .as_deref()
        .and_then(|n| credentials.iter().find(|c| c.name == n));
    let body = html! {
        h1 { (tr.t("credentials-title")) }
        (page::api_help(tr, "/credentials/{create,list}"))
        p.help { (tr.t("credentials-help")) }
        @if let Some(name) = &q.saved { p.notice role="status" id="saved" { (tr.ta("credentials-saved", &[("name", name.clone().into())])) } }
        @if let Some(name) = &q.deleted { p.notice role="status" id="deleted" { (tr.ta("credentials-deleted", &[("name", name.clone().into())])) } }
        @if let Some(p) = &problem { div.error-summary role="alert" id="problems" { p { (p) } } }
        @if credentials.is_empty() {
            p { (tr.t("credentials-none")) }
        } @else {
            table.list id="credentials" {
                caption.visually-hidden { (tr.t("credentials-title")) }
                thead { tr {
                    th scope="col" { (tr.t("column-name")) }
                    th scope="col" { (tr.t("column-type")) }
                    th scope="col" { (tr.t("credentials-username")) }
                    th scope="col" { (tr.t("credentials-headers")) }
                    th scope="col" { (tr.t("credentials-allowed-domain")) }
                    th scope="col" { (tr.t("column-updated")) }
                    th scope="col" { (tr.t("column-actions")) }
                } }
                tbody {
                    @for c in &credentials {
                        tr data-credential=(c.name) {
                            th scope="row" { code { (c.name) } }
                            td { (if c.kind == "basic" { tr.t("credentials-basic") } else { tr.t("credentials-token") }) }
                            td { (c.username.as_deref().unwrap_or("—")) }
                            td { (c.header_names.join(", ")) }
                            td { (c.allowed_domain.as_deref().unwrap_or("—")) }
                            td { (page::time(c.updated_at)) }
                            td.row-actions {
                                @if can_write {
                                    a href={ "/dashboard/credentials?rotate=" (c.name) "#credential-form" } aria-label=(tr.ta("credentials-rotate-named", &[("name", c.name.clone().into())])) { (tr.t("credentials-rotate")) }
                                    " "
                                    form method="post" action={ "/dashboard/credentials/" (c.name) "/delete" } {
                                        (page::csrf(signed))
                                        button type="submit" aria-label=(tr.ta("credentials-delete-named", &[("name", c.name.clone().into())])) { (tr.t("credentials-delete")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if can_write { (form_markup(tr, signed, rotating)) }
    };
    let title = tr.t("credentials-title");
    Ok(page::document(tr, Some(signed), &title, "credentials", body).into_response())
}

async fn list(
    State(d): State<Dashboard>,
    signed: Signed,
    Query(q): Query<ListQuery>,
) -> Result<Response, DashboardError> {
    signed.require(Permission::CredentialsRead)?;
    render(&d, &signed, &q, None).await
}

async fn save(State(d): State<Dashboard>, posted: Posted) -> Result<Response, DashboardError> {
    posted.signed.require(Permission::CredentialsWrite)?;
    let credential = credential(&posted.form);
    let name = credential.name().to_owned();
    match d.webhooks()?.save_credential(credential).await {
        Ok(_) => {
            let to = format!(
                "/dashboard/credentials?saved={}",
                form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
            );
            Ok(Redirect::to(&to).into_response())
        }
        Err(WebhookError::Invalid(message)) => {
            let q = ListQuery {
                saved: None,
                deleted: None,
                rotate: None,
            };
            render(&d, &posted.signed, &q, Some(message)).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn delete(
    State(d): State<Dashboard>,
    Path(name): Path<String>,
    posted: Posted,
) -> Result<Response, DashboardError> {
    posted.signed.require(Permission::CredentialsWrite)?;
    d.webhooks()?.delete_credential(&name).await?;
    let to = format!(
        "/dashboard/credentials?deleted={}",
        form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
    );
    Ok(Redirect::to(&to).into_response())
}
