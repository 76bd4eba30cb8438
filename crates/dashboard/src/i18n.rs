//! The dashboard's languages: one Fluent catalogue per language (`locales/<lang>/main.ftl`,
//! compiled into the binary), the choice from a cookie or `Accept-Language`, and the lookups
//! pages make. Every string a page shows comes from here.

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

/// A language the dashboard speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    Pt,
    Es,
    Fr,
    De,
    Ko,
}

impl Lang {
    /// Every language, English (the fallback) first.
    pub const ALL: [Lang; 6] = [Lang::En, Lang::Pt, Lang::Es, Lang::Fr, Lang::De, Lang::Ko];

    /// The BCP 47 primary language subtag (`lang` attributes, the cookie, `?to=`).
    pub const fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Pt => "pt",
            Lang::Es => "es",
            Lang::Fr => "fr",
            Lang::De => "de",
            Lang::Ko => "ko",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        let primary = code.split(['-', '_']).next().unwrap_or("");
        Lang::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(primary))
    }

    /// The catalogue's text.
    pub const fn source(self) -> &'static str {
        match self {
            Lang::En => include_str!("../locales/en/main.ftl"),
            Lang::Pt => include_str!("../locales/pt/main.ftl"),
            Lang::Es => include_str!("../locales/es/main.ftl"),
            Lang::Fr => include_str!("../locales/fr/main.ftl"),
            Lang::De => include_str!("../locales/de/main.ftl"),
            Lang::Ko => include_str!("../locales/ko/main.ftl"),
        }
    }
}

/// A catalogue that does not parse (a build with a broken `.ftl` file fails its tests).
#[derive(Debug, thiserror::Error)]
#[error("locales/{lang}/main.ftl: {detail}")]
pub struct CatalogueError {
    pub lang: &'static str,
    pub detail: String,
}

/// Every language's messages.
pub struct I18n {
    bundles: Vec<(Lang, FluentBundle<FluentResource>)>,
}

impl I18n {
    /// Parses every catalogue.
    pub fn load() -> Result<I18n, CatalogueError> {
        let mut bundles = Vec::with_capacity(Lang::ALL.len());
        for lang in Lang::ALL {
            let failed = |detail: String| CatalogueError {
                lang: lang.code(),
                detail,
            };
            let resource = FluentResource::try_new(lang.source().to_owned())
                .map_err(|(_, errors)| failed(format!("{errors:?}")))?;
            let id: LanguageIdentifier = lang
                .code()
                .parse()
                .map_err(|e| failed(format!("language id: {e}")))?;
            let mut bundle = FluentBundle::new_concurrent(vec![id]);
            // Pages are HTML; the isolation marks Fluent puts around arguments would end up in
            // attribute values and copied text.
            bundle.set_use_isolating(false);
            bundle
                .add_resource(resource)
                .map_err(|errors| failed(format!("{errors:?}")))?;
            bundles.push((lang, bundle));
        }
        Ok(I18n { bundles })
    }

    fn bundle(&self, lang: Lang) -> Option<&FluentBundle<FluentResource>> {
        self.bundles
            .iter()
            .find(|(l, _)| *l == lang)
            .map(|(_, b)| b)
    }

    /// The message `id` in `lang` (English when the language lacks it, the id itself when no
    /// catalogue has it: a test keeps every catalogue complete).
    pub fn text(&self, lang: Lang, id: &str, args: Option<&FluentArgs<'_>>) -> String {
        for candidate in [lang, Lang::En] {
            let Some(bundle) = self.bundle(candidate) else {
                continue;
            };
            let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
                continue;
            };
            let mut errors = Vec::new();
            let text = bundle.format_pattern(pattern, args, &mut errors);
            if !errors.is_empty() {
                tracing::warn!(
                    id,
                    lang = candidate.code(),
                    ?errors,
                    "message formatted with errors"
                );
            }
            return text.into_owned();
        }
        tracing::warn!(id, "message missing from every catalogue");
        id.to_owned()
    }

    /// The ids of the messages `lang`'s catalogue defines (lines `id = …` at the start of a
    /// line; attributes, terms and comments are not messages).
    pub fn message_ids(lang: Lang) -> Vec<String> {
        lang.source()
            .lines()
            .filter_map(|line| {
                let (id, _) = line.split_once('=')?;
                let id = id.trim_end();
                let is_id = id.starts_with(|c: char| c.is_ascii_lowercase())
                    && id
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                is_id.then(|| id.to_owned())
            })
            .collect()
    }
}

/// The language for a request: the `lw_lang` cookie when it names one, else the best of
/// `Accept-Language` (by q-value, then order), else English.
pub fn negotiate(cookie: Option<&str>, accept_language: Option<&str>) -> Lang {
    if let Some(lang) = cookie.and_then(Lang::from_code) {
        return lang;
    }
    let Some(header) = accept_language else {
        return Lang::En;
    };
    let mut best: Option<(f32, Lang)> = None;
    for item in header.split(',') {
        let mut parts = item.trim().split(';');
        let tag = parts.next().unwrap_or("").trim();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let Some(lang) = Lang::from_code(tag) else {
            continue;
        };
        // Ties keep the earlier entry: the header's order is the user's order.
        if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, lang));
        }
    }
    best.map_or(Lang::En, |(_, lang)| lang)
}

/// A page's translator: the catalogues and the request's language.
#[derive(Clone, Copy)]
pub struct Tr<'a> {
    pub i18n: &'a I18n,
    pub lang: Lang,
}

impl Tr<'_> {
    /// A message without arguments.
    pub fn t(&self, id: &str) -> String {
        self.i18n.text(self.lang, id, None)
    }

    /// A message with arguments (`("name", value)` pairs).
    pub fn ta(&self, id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
        let mut fluent = FluentArgs::new();
        for (k, v) in args {
            fluent.set(*k, v.clone());
        }
        self.i18n.text(self.lang, id, Some(&fluent))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_catalogue_parses_and_has_every_message_english_has() {
        I18n::load().expect("every catalogue parses");
        let english: BTreeSet<String> = I18n::message_ids(Lang::En).into_iter().collect();
        assert!(english.len() > 50, "the English catalogue is the full list");
        for lang in Lang::ALL {
            let ids: BTreeSet<String> = I18n::message_ids(lang).into_iter().collect();
            let missing: Vec<_> = english.difference(&ids).collect();
            let extra: Vec<_> = ids.difference(&english).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "locales/{}/main.ftl: missing {missing:?}, not in English {extra:?}",
                lang.code()
            );
        }
    }

    #[test]
    fn every_message_the_code_asks_for_exists() {
        // The ids the sources name in `.t("…")`/`.ta("…"` calls, error pages' `title_id` and
        // `msg: "…"` tables.
        let english: BTreeSet<String> = I18n::message_ids(Lang::En).into_iter().collect();
        let sources = [
            include_str!("lib.rs"),
            include_str!("page.rs"),
            include_str!("auth.rs"),
            include_str!("error.rs"),
            include_str!("templates.rs"),
            include_str!("activity.rs"),
            include_str!("campaigns.rs"),
            include_str!("canvases.rs"),
            include_str!("users.rs"),
            include_str!("credentials.rs"),
            include_str!("charts.rs"),
        ];
        let mut asked = BTreeSet::new();
        for source in sources {
            for opener in [".t(\"", ".ta(\"", "title_id: \"", "msg: \""] {
                for piece in source.split(opener).skip(1) {
                    if let Some(id) = piece.split('"').next()
                        && !id.is_empty()
                        && id
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit())
                    {
                        asked.insert(id.to_owned());
                    }
                }
            }
        }
        assert!(asked.len() > 30, "found the calls: {asked:?}");
        // Ids made at run time.
        for kind in leadwire_store::ActivityType::ALL {
            asked.insert(crate::activity::type_id(kind));
        }
        for state in crate::page::JOB_STATES {
            asked.insert(crate::page::job_state_id(state).to_owned());
        }
        for (_, id) in crate::campaigns::TRIGGERS {
            asked.insert(id.to_owned());
        }
        for status in [
            leadwire_campaigns::CampaignStatus::Draft,
            leadwire_campaigns::CampaignStatus::Active,
            leadwire_campaigns::CampaignStatus::Paused,
            leadwire_campaigns::CampaignStatus::Archived,
        ] {
            asked.insert(crate::campaigns::status_id(status).to_owned());
        }
        for id in [
            "campaign-pause",
            "campaign-start",
            "campaign-pause-named",
            "campaign-start-named",
            "campaign-bad-audience",
            "campaign-bad-number",
            "campaign-bad-spec",
            "nav-campaigns",
            "nav-canvases",
            "nav-users",
            "nav-credentials",
            "nav-deliveries",
            "charts-delivered",
            "charts-failed",
            "charts-aborted",
            "charts-pending",
            "charts-retries",
            "charts-latency",
            "charts-last-hour",
            "charts-last-day",
            "charts-last-week",
            "step-audience-paths",
            "step-decision-split",
            "step-user-update",
            "step-webhook",
            "step-delay",
            "step-action-paths",
            "step-context",
            "language-name",
            "nav-templates",
            "nav-activity",
            "activity-bad-type",
            "activity-bad-time",
            "preview-user-not-object",
        ] {
            asked.insert(id.to_owned());
        }
        let missing: Vec<_> = asked.difference(&english).collect();
        assert!(
            missing.is_empty(),
            "messages used but not in locales/en: {missing:?}"
        );
    }

    #[test]
    fn translations_differ_from_english() {
        let i18n = I18n::load().expect("loads");
        for lang in Lang::ALL.into_iter().skip(1) {
            assert_ne!(
                i18n.text(lang, "nav-templates", None),
                i18n.text(Lang::En, "nav-templates", None),
                "{}",
                lang.code()
            );
        }
        assert_eq!(
            i18n.text(Lang::Ko, "nav-activity", None),
            "메시지 활동 로그"
        );
    }

    #[test]
    fn the_cookie_wins_then_accept_language_by_quality() {
        assert_eq!(negotiate(Some("ko"), Some("de")), Lang::Ko);
        assert_eq!(negotiate(Some("xx"), Some("de-DE,de;q=0.9")), Lang::De);
        assert_eq!(negotiate(None, Some("ja, fr-CA;q=0.8, pt;q=0.9")), Lang::Pt);
        assert_eq!(negotiate(None, Some("es;q=0.5, ko;q=0.5")), Lang::Es);
        assert_eq!(negotiate(None, Some("ja, zh")), Lang::En);
        assert_eq!(negotiate(None, Some("de;q=0")), Lang::En);
        assert_eq!(negotiate(None, None), Lang::En);
    }
}
