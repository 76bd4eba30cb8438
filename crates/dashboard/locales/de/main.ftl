# leadwire dashboard — Deutsch

language-name = Deutsch
skip-to-content = Zum Inhalt springen
nav-label = Hauptnavigation
nav-templates = Webhook-Vorlagen
nav-activity = Nachrichten-Aktivitätsprotokoll
nav-api-docs = API-Dokumentation
language-switcher = Sprache
sign-out = Abmelden

error-forbidden = Ihre Rolle erlaubt das nicht
error-csrf = Dieses Formular ist abgelaufen. Gehen Sie zurück, laden Sie die Seite neu und versuchen Sie es erneut.
error-not-found = Nicht gefunden
error-bad-request = Diese Anfrage kann nicht ausgeführt werden
error-unavailable = Dieser Teil von leadwire läuft auf diesem Server nicht
error-internal = Bei uns ist etwas schiefgegangen. Der Fehler wurde protokolliert.
error-back-home = Zurück zum Dashboard

login-title = Bei leadwire anmelden
login-failed = E-Mail oder Passwort ist nicht richtig.
login-email = E-Mail
login-password = Passwort
login-submit = Anmelden

home-title = Dashboard
home-signed-in-as = Angemeldet als { $email } ({ $role }).
home-deliveries = Zustellungen
home-next-steps = Gehe zu

deliveries-by-state = Webhook-Zustellungen nach Status
column-state = Status
column-count = Anzahl
job-queued = In der Warteschlange
job-in-flight = Wird gesendet
job-delivered = Zugestellt
job-aborted = Abgebrochen
job-failed = Fehlgeschlagen

templates-title = Webhook-Vorlagen
templates-new = Webhook-Vorlage erstellen
templates-hide-archived = Archivierte Vorlagen ausblenden
templates-show-archived = Archivierte Vorlagen anzeigen
templates-none = Noch keine Webhook-Vorlagen.
templates-archived = Archiviert
templates-duplicate = Duplizieren
templates-duplicate-named = { $name } duplizieren
templates-archive = Archivieren
templates-archive-named = { $name } archivieren
templates-copy-name = { $name } (Kopie)

column-name = Name
column-method = Methode
column-url = URL
column-updated = Zuletzt bearbeitet
column-actions = Aktionen
column-status = HTTP-Status
column-user = Nutzer
column-campaign = Kampagne oder Canvas
column-template = Vorlage
column-attempts = Versuche
column-error = Letzter Fehler
column-time = Zeit
column-type = Typ
column-message = Meldung
column-step = Canvas-Schritt
column-delivery-id = Zustellungs-ID

preview-user-not-object = Der eigene Nutzer muss ein JSON-Objekt sein.
preview-user-bad-json = Der eigene Nutzer ist kein gültiges JSON: { $detail }

finding-error = Fehler:
finding-warning = Hinweis:
finding-line-column = Zeile { $line }, Spalte { $column }:
finding-suggestion = Schreiben Sie stattdessen „{ $text }“.

compose-title-new = Webhook-Vorlage erstellen
compose-title-edit = „{ $name }“ bearbeiten
compose-saved = Die Vorlage wurde gespeichert.
compose-problems = { $count ->
    [one] Es gibt 1 Problem zu beheben
   *[other] Es gibt { $count } Probleme zu beheben
}
compose-warnings = { $count ->
    [one] Die Prüfung hat 1 Vorschlag
   *[other] Die Prüfung hat { $count } Vorschläge
}
compose-save = Vorlage speichern
compose-section-template = Vorlage
compose-name = Name der Vorlage
compose-description = Beschreibung
compose-section-request = Verfassen: Anfrage
compose-url = Webhook-URL
compose-method = HTTP-Methode
compose-section-body = Anfragetext
compose-body-mode = Format des Anfragetexts
compose-body-kv = JSON-Schlüssel/Wert-Paare
compose-body-raw = Rohtext
compose-body-none = Kein Anfragetext
compose-body-pairs = Schlüssel/Wert-Paare
compose-key = Schlüssel
compose-value = Wert
compose-key-n = Schlüssel { $n }
compose-value-n = Wert { $n }
compose-add-body-row = Schlüssel/Wert-Paar hinzufügen
compose-raw-body = Anfragetext als Rohtext
compose-value-typing = Werte werden gesendet als
compose-typing-strings = Zeichenketten
compose-typing-json = JSON-Werte (Zahlen, true/false behalten ihren Typ)
compose-section-headers = Anfrage-Header
compose-header-pairs = Header
compose-header-name = Header-Name
compose-header-name-n = Header-Name { $n }
compose-header-value-n = Header-Wert { $n }
compose-add-header-row = Header hinzufügen
compose-section-salesforce = Salesforce
compose-lookup-field = Suchfeld
compose-lookup-help = Ein Salesforce-Feld (etwa Email), über das der Lead gesucht wird, bevor ein Anlegen erneut gesendet wird, damit kein Lead doppelt entsteht.
compose-write-back = Felder der Antwort beim Nutzer speichern
compose-response-field = Feld der Antwort
compose-attribute = Nutzerattribut
compose-response-field-n = Feld der Antwort { $n }
compose-attribute-n = Nutzerattribut { $n }
compose-batch = Schreibvorgänge in sObject-Collections-Aufrufen bündeln
compose-section-test = Test
compose-test-help = Zeigen Sie die Anfrage für einen Nutzer in der Vorschau an oder senden Sie sie einmal. Ein Testversand steht im Nachrichten-Aktivitätsprotokoll.
compose-preview-external-id = Vorhandener Nutzer (External ID)
compose-preview-custom-user = Oder ein eigener Nutzer (JSON)
compose-preview-custom-user-help = Zum Beispiel {"{"}"external_id": "u1", "first_name": "Ana", "custom_attributes": {"{"}"company": "Acme"{"}"}{"}"}
compose-preview = Vorschau
compose-test-send = Test senden

result-preview-title = Vorschau
result-test-send-title = Testversand
result-not-sent = Es wurde nichts gesendet.
result-aborted = Abgebrochen:
result-render-error = Renderfehler:
result-status = Status der Antwort:
result-duration = Dauerte { $ms } ms
result-request = Anfrage
result-request-headers = Anfrage-Header
result-request-body = Anfragetext
result-response = Antwort
result-response-headers = Antwort-Header

activity-title = Nachrichten-Aktivitätsprotokoll
activity-filters = Filter
activity-filter-type = Typ
activity-filter-campaign = Kampagne oder Canvas
activity-filter-user = Nutzer (External ID)
activity-filter-since = Von
activity-filter-until = Bis
activity-any = Alle
activity-apply = Filter anwenden
activity-clear = Filter zurücksetzen
activity-times-utc = Zeiten sind in UTC.
activity-bad-type = Diesen Aktivitätstyp gibt es nicht.
activity-bad-time = Eine Zeit muss wie 2026-01-31T12:00 aussehen.
activity-deliveries = Letzte Zustellungen
activity-entries = Protokolleinträge
activity-none = Keine passenden Einträge.
activity-details = Details
activity-details-of = Details zu Eintrag { $id }
activity-entry-title = Aktivitätseintrag { $id }
activity-back = Zurück zum Nachrichten-Aktivitätsprotokoll

activity-type-aborted = Abgebrochen
activity-type-render-error = Renderfehler
activity-type-retrying = Neuer Versuch
activity-type-failed = Fehlgeschlagen
activity-type-write-back-failed = Speichern der Antwort fehlgeschlagen
activity-type-test-send = Testversand
activity-type-connected-content-error = Connected-Content-Fehler
activity-type-token-refreshed = Token erneuert
activity-type-deduplicated = Dublette vermieden
activity-type-outcome-unknown = Ergebnis unbekannt
activity-type-api-budget = API-Kontingent

nav-campaigns = Kampagnen
campaigns-title = Kampagnen
campaigns-new = Kampagne erstellen
campaigns-none = Noch keine Kampagnen.
campaign-trigger = Auslöser
campaign-pause = Pausieren
campaign-pause-named = { $name } pausieren
campaign-start = Starten
campaign-start-named = { $name } starten
campaign-title-edit = Kampagne „{ $name }“
campaign-section-basics = Kampagne
campaign-name-fixed = Der Name einer Kampagne kann sich nicht ändern; erstellen Sie stattdessen eine neue.
campaign-trigger-kind = Senden, wenn der Nutzer
campaign-trigger-name = Attribut, Ereignis oder Produkt
campaign-trigger-name-help = Das benutzerdefinierte Attribut, Ereignis oder die Produkt-ID des Auslösers (nicht für „fügt eine E-Mail-Adresse hinzu“ oder die API).
campaign-trigger-value = Attributwert (optional)
campaign-section-message = Nachricht
campaign-section-delivery = Zielgruppe und Zustellung
campaign-audience = Zielgruppenfilter (JSON)
campaign-audience-help = Leer: alle. Wie in der REST-API, zum Beispiel {"{"}"attribute": "lead_stage", "equals": "Lead"{"}"}
campaign-reeligibility = Erneute Berechtigung (Minuten)
campaign-reeligibility-help = Leer: jeder Nutzer erhält diese Kampagne einmal.
campaign-rate-limit = Sendelimit (pro Minute)
campaign-rate-limit-help = Leer: kein Limit. Braze erlaubt 10 bis 500.000.
campaign-save = Kampagne speichern
campaign-name-taken = Eine Kampagne „{ $name }“ gibt es schon; öffnen Sie sie, um sie zu ändern.
campaign-bad-audience = Der Zielgruppenfilter ist kein gültiges JSON: { $detail }
campaign-bad-number = Erneute Berechtigung und Limit müssen ganze Zahlen sein.
campaign-bad-spec = Die Kampagne ist ungültig: { $detail }
trigger-email-added = eine E-Mail-Adresse hinzufügt
trigger-attribute-changed = ein benutzerdefiniertes Attribut ändert
trigger-custom-event = ein benutzerdefiniertes Ereignis ausführt
trigger-purchase = einen Kauf tätigt
trigger-api-triggered = sie über die API erhält
status-draft = Entwurf
status-active = Aktiv
status-paused = Pausiert
status-archived = Archiviert
