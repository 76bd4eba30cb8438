//! Field and header names as translated documentation wrote them.
//!
//! Braze's "Salesforce Sales Cloud" page was machine-translated into Portuguese, Spanish, French,
//! German and Korean, and the translation reached the request tables: the Create Lead body says
//! `Vorname`, `sobrenome`, `correo electrónico`, `회사`… and the headers say `Autorisierung` or
//! `Tipo de Conteúdo`. A template copied from those pages fails: Salesforce rejects the whole
//! record for one unknown field (`INVALID_FIELD`), and a server reads no `Autorisierung` header.
//! This table lets the linter say which English name was meant.
//!
//! Matching ignores case, Latin accents and every character that is not a letter or a digit
//! (`_`, `-`, spaces, `/`, `'`), so `primeiro_nome`, `Primeiro Nome` and `primeiroNome` are one word.
//! No word maps to two different names (a unit test holds that): a word whose meaning depends on
//! the language is left out rather than guessed.

use std::fmt;

use Language::{French as Fr, German as De, Korean as Ko, Portuguese as Pt, Spanish as Es};

/// The languages the seed page was translated into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    Portuguese,
    Spanish,
    French,
    German,
    Korean,
}

impl Language {
    /// The language's English name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Language::Portuguese => "Portuguese",
            Language::Spanish => "Spanish",
            Language::French => "French",
            Language::German => "German",
            Language::Korean => "Korean",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One dictionary entry: a word as a translation writes it, and the English name it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub language: Language,
    pub word: &'static str,
    /// A Lead field's API name (`FirstName`) or an HTTP header name (`Authorization`).
    pub means: &'static str,
}

/// What a lookup found: the English name, and the languages the word was written in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    pub means: &'static str,
    /// Never empty; in [`Language`] order. Several when languages share the spelling
    /// (`empresa` is Portuguese and Spanish).
    pub languages: Vec<Language>,
}

impl Translation {
    /// `German`, `Portuguese or Spanish`, `Portuguese, Spanish or French`.
    pub fn languages_text(&self) -> String {
        let names: Vec<&str> = self.languages.iter().map(|l| l.name()).collect();
        match names.split_last() {
            None => String::new(),
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        }
    }
}

/// The Salesforce Lead field API name a translated body key means (`Vorname` → `FirstName`).
pub fn field_for(word: &str) -> Option<&'static str> {
    translate_field(word).map(|t| t.means)
}

/// The HTTP header a translated header name means (`Autorisierung` → `Authorization`).
pub fn header_for(name: &str) -> Option<&'static str> {
    translate_header(name).map(|t| t.means)
}

/// [`field_for`], with the languages the word belongs to.
pub fn translate_field(word: &str) -> Option<Translation> {
    lookup(FIELDS, word)
}

/// [`header_for`], with the languages the name belongs to.
pub fn translate_header(name: &str) -> Option<Translation> {
    lookup(HEADERS, name)
}

/// Lower case, Latin accents taken off (`ß` → `ss`, `œ` → `oe`), and only letters and digits
/// kept: the form in which two spellings of one word compare equal. Hangul is kept as it is.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match unaccent(c) {
            Some(plain) => out.push_str(plain),
            // Combining accents (a decomposed `é`) are not alphanumeric, so they go here too.
            None if c.is_alphanumeric() => out.push(c),
            None => {}
        }
    }
    out
}

fn unaccent(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => "a",
        'ç' | 'ć' | 'č' => "c",
        'è' | 'é' | 'ê' | 'ë' | 'ē' => "e",
        'ì' | 'í' | 'î' | 'ï' | 'ī' => "i",
        'ñ' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => "o",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' => "u",
        'ý' | 'ÿ' => "y",
        'ß' => "ss",
        'æ' => "ae",
        'œ' => "oe",
        _ => return None,
    })
}

fn lookup(table: &'static [Entry], word: &str) -> Option<Translation> {
    let folded = fold(word);
    if folded.is_empty() {
        return None;
    }
    let matches: Vec<&Entry> = table.iter().filter(|e| fold(e.word) == folded).collect();
    let means = matches.first()?.means;
    // The English name itself is not a translation of it (`e-mail` folds like `Email`, but a
    // key spelled `email` is the field).
    if word.trim().eq_ignore_ascii_case(means) {
        return None;
    }
    // Name the languages that spell it exactly so (`E-Mail` is German, `e-mail` French…), else
    // those that spell it up to case, else every language the folded word belongs to.
    let exact: Vec<Language> = matches
        .iter()
        .filter(|e| e.word == word.trim())
        .map(|e| e.language)
        .collect();
    let lowered = word.trim().to_lowercase();
    let same_case: Vec<Language> = matches
        .iter()
        .filter(|e| e.word.to_lowercase() == lowered)
        .map(|e| e.language)
        .collect();
    let mut languages = if !exact.is_empty() {
        exact
    } else if !same_case.is_empty() {
        same_case
    } else {
        matches.iter().map(|e| e.language).collect()
    };
    languages.sort();
    languages.dedup();
    Some(Translation { means, languages })
}

const fn e(language: Language, word: &'static str, means: &'static str) -> Entry {
    Entry {
        language,
        word,
        means,
    }
}

/// Body keys. Every key of the five seed pages' Create Lead tables is here (marked "seed"), with
/// the words a translator or a user is likely to write for the same Lead fields: the dictionary
/// word and Salesforce's own label in that language.
///
/// A word is an address part (`estado` → State, `adresse` → Street) when the language also uses
/// it for something else on a lead (Spanish `estado` is also a lead's status), because a body
/// key beside `Ciudad` and `País` is far more often the address. Words that are already a Lead
/// field's API name (`Status`, `Description`, `Email`) are not translations and are left out, and
/// so are words that are English too (`mobile`, `région`, `téléphone`): the schema's English
/// synonyms find their field without calling an English key French.
pub const FIELDS: &[Entry] = &[
    // Portuguese (Brazil, and Portugal where the words differ).
    e(Pt, "primeiroNome", "FirstName"), // seed
    e(Pt, "primeiro nome", "FirstName"),
    e(Pt, "nome", "FirstName"),
    e(Pt, "prenome", "FirstName"),
    e(Pt, "nome próprio", "FirstName"),
    e(Pt, "sobrenome", "LastName"), // seed
    e(Pt, "último nome", "LastName"),
    // In Portugal `apelido` is the surname (Salesforce pt-PT labels LastName so); in Brazil it
    // is a nickname, which is no Lead field either, so LastName is the useful answer.
    e(Pt, "apelido", "LastName"),
    e(Pt, "nome de família", "LastName"),
    e(Pt, "e-mail", "Email"),
    e(Pt, "endereço de e-mail", "Email"),
    e(Pt, "correio eletrônico", "Email"),
    e(Pt, "correio electrónico", "Email"),
    e(Pt, "empresa", "Company"), // seed
    e(Pt, "companhia", "Company"),
    e(Pt, "nome da empresa", "Company"),
    e(Pt, "telefone", "Phone"),
    e(Pt, "celular", "MobilePhone"),
    e(Pt, "telemóvel", "MobilePhone"),
    e(Pt, "telefone celular", "MobilePhone"),
    e(Pt, "cargo", "Title"),
    e(Pt, "título", "Title"),
    e(Pt, "cidade", "City"),
    e(Pt, "estado", "State"),
    e(Pt, "estado/província", "State"),
    e(Pt, "país", "Country"),
    e(Pt, "CEP", "PostalCode"),
    e(Pt, "código postal", "PostalCode"),
    e(Pt, "rua", "Street"),
    e(Pt, "endereço", "Street"),
    e(Pt, "logradouro", "Street"),
    e(Pt, "descrição", "Description"),
    e(Pt, "setor", "Industry"),
    e(Pt, "indústria", "Industry"),
    e(Pt, "origem do lead", "LeadSource"),
    e(Pt, "fonte do lead", "LeadSource"),
    e(Pt, "status do lead", "Status"),
    e(Pt, "situação", "Status"),
    // Spanish.
    e(Es, "nombre", "FirstName"),
    e(Es, "primer nombre", "FirstName"),
    e(Es, "nombre de pila", "FirstName"),
    e(Es, "apellido", "LastName"), // seed
    e(Es, "apellidos", "LastName"),
    e(Es, "correo electrónico", "Email"), // seed
    e(Es, "correo", "Email"),
    e(Es, "correo-e", "Email"),
    e(Es, "e-mail", "Email"),
    e(Es, "dirección de correo electrónico", "Email"),
    e(Es, "empresa", "Company"), // seed
    e(Es, "compañía", "Company"),
    e(Es, "nombre de la empresa", "Company"),
    e(Es, "teléfono", "Phone"),
    e(Es, "móvil", "MobilePhone"),
    e(Es, "teléfono móvil", "MobilePhone"),
    e(Es, "celular", "MobilePhone"),
    e(Es, "cargo", "Title"),
    e(Es, "puesto", "Title"),
    e(Es, "título", "Title"),
    e(Es, "ciudad", "City"),
    e(Es, "estado", "State"),
    e(Es, "provincia", "State"),
    e(Es, "estado/provincia", "State"),
    e(Es, "país", "Country"),
    e(Es, "código postal", "PostalCode"),
    e(Es, "calle", "Street"),
    e(Es, "dirección", "Street"),
    e(Es, "sitio web", "Website"),
    e(Es, "página web", "Website"),
    e(Es, "descripción", "Description"),
    e(Es, "industria", "Industry"),
    e(Es, "origen del candidato", "LeadSource"),
    e(Es, "origen del prospecto", "LeadSource"),
    e(Es, "origen del cliente potencial", "LeadSource"),
    e(Es, "estado del candidato", "Status"),
    e(Es, "estado del prospecto", "Status"),
    e(Es, "estado del cliente potencial", "Status"),
    // French.
    e(Fr, "prénom", "FirstName"),
    e(Fr, "nom", "LastName"),
    e(Fr, "nom de famille", "LastName"),
    e(Fr, "e-mail", "Email"), // seed
    e(Fr, "courriel", "Email"),
    e(Fr, "adresse e-mail", "Email"),
    e(Fr, "adresse électronique", "Email"),
    e(Fr, "entreprise", "Company"), // seed
    e(Fr, "société", "Company"),
    e(Fr, "compagnie", "Company"),
    e(Fr, "nom de l'entreprise", "Company"),
    e(Fr, "nom de la société", "Company"),
    e(Fr, "portable", "MobilePhone"),
    e(Fr, "téléphone mobile", "MobilePhone"),
    e(Fr, "téléphone portable", "MobilePhone"),
    e(Fr, "titre", "Title"),
    e(Fr, "fonction", "Title"),
    e(Fr, "poste", "Title"),
    e(Fr, "ville", "City"),
    e(Fr, "état", "State"),
    e(Fr, "état/province", "State"),
    e(Fr, "pays", "Country"),
    e(Fr, "code postal", "PostalCode"),
    e(Fr, "rue", "Street"),
    e(Fr, "adresse", "Street"),
    e(Fr, "site web", "Website"),
    e(Fr, "site internet", "Website"),
    e(Fr, "secteur", "Industry"),
    e(Fr, "secteur d'activité", "Industry"),
    e(Fr, "industrie", "Industry"),
    e(Fr, "origine du prospect", "LeadSource"),
    e(Fr, "source du prospect", "LeadSource"),
    e(Fr, "origine de la piste", "LeadSource"),
    e(Fr, "statut", "Status"),
    e(Fr, "statut du prospect", "Status"),
    e(Fr, "statut de la piste", "Status"),
    // German.
    e(De, "Vorname", "FirstName"), // seed
    e(De, "Nachname", "LastName"), // seed
    e(De, "Familienname", "LastName"),
    e(De, "E-Mail", "Email"), // seed
    e(De, "E-Mail-Adresse", "Email"),
    e(De, "Unternehmen", "Company"), // seed
    e(De, "Firma", "Company"),
    e(De, "Firmenname", "Company"),
    e(De, "Unternehmensname", "Company"),
    e(De, "Telefon", "Phone"),
    e(De, "Telefonnummer", "Phone"),
    e(De, "Mobiltelefon", "MobilePhone"),
    e(De, "Mobilnummer", "MobilePhone"),
    e(De, "Handy", "MobilePhone"),
    e(De, "Titel", "Title"),
    e(De, "Berufsbezeichnung", "Title"),
    e(De, "Stadt", "City"),
    e(De, "Ort", "City"),
    e(De, "Bundesland", "State"),
    e(De, "Bundesstaat", "State"),
    e(De, "Provinz", "State"),
    e(De, "Land", "Country"),
    e(De, "Postleitzahl", "PostalCode"),
    e(De, "PLZ", "PostalCode"),
    e(De, "Straße", "Street"),
    e(De, "Adresse", "Street"),
    e(De, "Anschrift", "Street"),
    e(De, "Webseite", "Website"),
    e(De, "Internetseite", "Website"),
    e(De, "Beschreibung", "Description"),
    e(De, "Branche", "Industry"),
    e(De, "Industrie", "Industry"),
    e(De, "Lead-Quelle", "LeadSource"),
    e(De, "Quelle", "LeadSource"),
    // Korean: Salesforce's Korean labels call FirstName 이름 and LastName 성.
    e(Ko, "이름", "FirstName"), // seed
    e(Ko, "성", "LastName"),    // seed
    e(Ko, "이메일", "Email"),   // seed
    e(Ko, "이메일 주소", "Email"),
    e(Ko, "전자 메일", "Email"),
    e(Ko, "회사", "Company"), // seed
    e(Ko, "회사명", "Company"),
    e(Ko, "회사 이름", "Company"),
    e(Ko, "전화", "Phone"),
    e(Ko, "전화번호", "Phone"),
    e(Ko, "휴대폰", "MobilePhone"),
    e(Ko, "휴대전화", "MobilePhone"),
    e(Ko, "직함", "Title"),
    e(Ko, "직위", "Title"),
    e(Ko, "직책", "Title"),
    e(Ko, "도시", "City"),
    e(Ko, "시/군/구", "City"),
    e(Ko, "주", "State"),
    e(Ko, "시/도", "State"),
    e(Ko, "국가", "Country"),
    e(Ko, "우편번호", "PostalCode"),
    e(Ko, "주소", "Street"),
    e(Ko, "도로명 주소", "Street"),
    e(Ko, "웹사이트", "Website"),
    e(Ko, "설명", "Description"),
    e(Ko, "업종", "Industry"),
    e(Ko, "산업", "Industry"),
    e(Ko, "리드 소스", "LeadSource"),
    e(Ko, "리드 출처", "LeadSource"),
    e(Ko, "상태", "Status"),
    e(Ko, "리드 상태", "Status"),
];

/// Header names. The seed pages' (marked "seed") and the other likely renderings of
/// `Authorization`, `Content-Type` and `Accept`.
pub const HEADERS: &[Entry] = &[
    e(Pt, "Autorização", "Authorization"),     // seed
    e(Pt, "Tipo de Conteúdo", "Content-Type"), // seed
    e(Pt, "Aceitar", "Accept"),
    e(Es, "Autorización", "Authorization"),     // seed
    e(Es, "Tipo de contenido", "Content-Type"), // seed
    e(Es, "Aceptar", "Accept"),
    e(Fr, "Autorisation", "Authorization"),   // seed
    e(Fr, "Type de contenu", "Content-Type"), // seed
    e(Fr, "Accepter", "Accept"),
    e(De, "Autorisierung", "Authorization"), // seed
    e(De, "Berechtigung", "Authorization"),
    e(De, "Content-Typ", "Content-Type"), // seed
    e(De, "Inhaltstyp", "Content-Type"),
    e(De, "Inhalts-Typ", "Content-Type"),
    e(De, "Akzeptieren", "Accept"),
    // Korean: 승인 ("approval") is what the seed wrote for Authorization.
    e(Ko, "승인", "Authorization"), // seed
    e(Ko, "권한 부여", "Authorization"),
    e(Ko, "인증", "Authorization"),
    e(Ko, "콘텐츠-유형", "Content-Type"), // seed
    e(Ko, "컨텐츠 유형", "Content-Type"),
    e(Ko, "콘텐츠 타입", "Content-Type"),
    e(Ko, "컨텐츠 타입", "Content-Type"),
    e(Ko, "수락", "Accept"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_keys_and_headers() {
        for (word, field) in [
            ("primeiroNome", "FirstName"),
            ("sobrenome", "LastName"),
            ("empresa", "Company"),
            ("apellido", "LastName"),
            ("correo electrónico", "Email"),
            ("e-mail", "Email"),
            ("entreprise", "Company"),
            ("Vorname", "FirstName"),
            ("Nachname", "LastName"),
            ("E-Mail", "Email"),
            ("Unternehmen", "Company"),
            ("이름", "FirstName"),
            ("성", "LastName"),
            ("이메일", "Email"),
            ("회사", "Company"),
        ] {
            assert_eq!(field_for(word), Some(field), "{word}");
        }
        for (name, header) in [
            ("Autorização", "Authorization"),
            ("Tipo de Conteúdo", "Content-Type"),
            ("Autorización", "Authorization"),
            ("Tipo de contenido", "Content-Type"),
            ("Autorisation", "Authorization"),
            ("Type de contenu", "Content-Type"),
            ("Autorisierung", "Authorization"),
            ("Content-Typ", "Content-Type"),
            ("승인", "Authorization"),
            ("콘텐츠-유형", "Content-Type"),
        ] {
            assert_eq!(header_for(name), Some(header), "{name}");
        }
    }

    #[test]
    fn case_accents_and_separators_do_not_matter() {
        assert_eq!(field_for("PRIMEIRO_NOME"), Some("FirstName"));
        assert_eq!(field_for("primeiro-nome"), Some("FirstName"));
        assert_eq!(field_for("correo_electronico"), Some("Email"));
        assert_eq!(field_for("CorreoElectrónico"), Some("Email"));
        assert_eq!(field_for("prenom"), Some("FirstName"));
        assert_eq!(field_for("societe"), Some("Company"));
        assert_eq!(field_for("compania"), Some("Company"));
        assert_eq!(field_for("Strasse"), Some("Street"));
        assert_eq!(field_for("e_mail"), Some("Email"));
        assert_eq!(field_for(" Vorname "), Some("FirstName"));
        // A decomposed é (e + U+0301) folds like the composed one.
        assert_eq!(field_for("pre\u{301}nom"), Some("FirstName"));
        assert_eq!(header_for("content typ"), Some("Content-Type"));
        assert_eq!(header_for("AUTORIZACION"), Some("Authorization"));
        assert_eq!(header_for("콘텐츠 유형"), Some("Content-Type"));
        assert_eq!(header_for("권한부여"), Some("Authorization"));
        assert_eq!(fold("Zip/Postal Code"), "zippostalcode");
        assert_eq!(fold("Straße-Nr."), "strassenr");
        assert_eq!(fold("콘텐츠-유형"), "콘텐츠유형");
    }

    #[test]
    fn english_names_are_not_translations() {
        for word in [
            "Email",
            "email",
            "firstName",
            "Company",
            "Status",
            "Description",
        ] {
            assert_eq!(field_for(word), None, "{word}");
        }
        for name in ["Authorization", "Content-Type", "content-type", "Accept"] {
            assert_eq!(header_for(name), None, "{name}");
        }
        assert_eq!(field_for(""), None);
        assert_eq!(field_for("--"), None);
        assert_eq!(field_for("Lead_Stage__c"), None);
    }

    #[test]
    fn languages_are_named_by_spelling() {
        let t = translate_field("Vorname").expect("German");
        assert_eq!(t.languages, vec![Language::German]);
        assert_eq!(t.languages_text(), "German");
        let t = translate_field("empresa").expect("two languages");
        assert_eq!(t.languages, vec![Language::Portuguese, Language::Spanish]);
        assert_eq!(t.languages_text(), "Portuguese or Spanish");
        // `E-Mail` is the German spelling; `e-mail` the others'.
        assert_eq!(
            translate_field("E-Mail").expect("German").languages,
            vec![Language::German]
        );
        assert_eq!(
            translate_field("e-mail").expect("three").languages_text(),
            "Portuguese, Spanish or French"
        );
        // No exact spelling: every language the folded word belongs to.
        assert_eq!(
            translate_field("EMAIL-ADRESSE").expect("German").languages,
            vec![Language::German]
        );
        assert_eq!(
            translate_header("Content-Typ")
                .expect("German")
                .languages_text(),
            "German"
        );
    }

    #[test]
    fn no_word_means_two_things() {
        for table in [FIELDS, HEADERS] {
            for a in table {
                assert!(!fold(a.word).is_empty(), "{}", a.word);
                for b in table {
                    if fold(a.word) == fold(b.word) {
                        assert_eq!(a.means, b.means, "{} / {}", a.word, b.word);
                    }
                }
            }
        }
    }
}
