# leadwire dashboard — Français

language-name = Français
skip-to-content = Aller au contenu
nav-label = Principal
nav-templates = Modèles de webhook
nav-activity = Journal d’activité des messages
nav-api-docs = Documentation de l’API
language-switcher = Langue
sign-out = Se déconnecter

error-forbidden = Votre rôle ne permet pas cette action
error-csrf = Ce formulaire a expiré. Revenez en arrière, rechargez la page et réessayez.
error-not-found = Introuvable
error-bad-request = Cette demande ne peut pas être faite
error-unavailable = Cette partie de leadwire ne tourne pas sur ce serveur
error-internal = Une erreur s’est produite de notre côté. Elle a été journalisée.
error-back-home = Retour au tableau de bord

login-title = Se connecter à leadwire
login-failed = L’e-mail ou le mot de passe est incorrect.
login-email = E-mail
login-password = Mot de passe
login-submit = Se connecter

home-title = Tableau de bord
home-signed-in-as = Connecté en tant que { $email } ({ $role }).
home-deliveries = Envois
home-next-steps = Aller à

deliveries-by-state = Envois de webhooks par état
column-state = État
column-count = Nombre
job-queued = En file d’attente
job-in-flight = En cours d’envoi
job-delivered = Livré
job-aborted = Interrompu
job-failed = Échoué

templates-title = Modèles de webhook
templates-new = Créer un modèle de webhook
templates-hide-archived = Masquer les modèles archivés
templates-show-archived = Afficher les modèles archivés
templates-none = Aucun modèle de webhook pour l’instant.
templates-archived = Archivé
templates-duplicate = Dupliquer
templates-duplicate-named = Dupliquer { $name }
templates-archive = Archiver
templates-archive-named = Archiver { $name }
templates-copy-name = { $name } (copie)

column-name = Nom
column-method = Méthode
column-url = URL
column-updated = Dernière modification
column-actions = Actions
column-status = Statut HTTP
column-user = Utilisateur
column-campaign = Campagne ou Canvas
column-template = Modèle
column-attempts = Tentatives
column-error = Dernière erreur
column-time = Heure
column-type = Type
column-message = Message
column-step = Étape du Canvas
column-delivery-id = Id d’envoi

preview-user-not-object = L’utilisateur personnalisé doit être un objet JSON.
preview-user-bad-json = L’utilisateur personnalisé n’est pas un JSON valide : { $detail }

finding-error = Erreur :
finding-warning = Avertissement :
finding-line-column = ligne { $line }, colonne { $column } :
finding-suggestion = Écrivez « { $text } ».

compose-title-new = Créer un modèle de webhook
compose-title-edit = Modifier « { $name } »
compose-saved = Le modèle a été enregistré.
compose-problems = { $count ->
    [one] Il y a 1 problème à corriger
   *[other] Il y a { $count } problèmes à corriger
}
compose-warnings = { $count ->
    [one] Le vérificateur a 1 suggestion
   *[other] Le vérificateur a { $count } suggestions
}
compose-save = Enregistrer le modèle
compose-section-template = Modèle
compose-name = Nom du modèle
compose-description = Description
compose-section-request = Rédiger : requête
compose-url = URL du webhook
compose-method = Méthode HTTP
compose-section-body = Corps de la requête
compose-body-mode = Format du corps
compose-body-kv = Paires clé/valeur JSON
compose-body-raw = Texte brut
compose-body-none = Pas de corps
compose-body-pairs = Paires clé/valeur
compose-key = Clé
compose-value = Valeur
compose-key-n = Clé { $n }
compose-value-n = Valeur { $n }
compose-add-body-row = Ajouter une paire clé/valeur
compose-raw-body = Corps en texte brut
compose-value-typing = Les valeurs sont envoyées comme
compose-typing-strings = Chaînes
compose-typing-json = Valeurs JSON (nombres et true/false gardent leur type)
compose-section-headers = En-têtes de la requête
compose-header-pairs = En-têtes
compose-header-name = Nom de l’en-tête
compose-header-name-n = Nom de l’en-tête { $n }
compose-header-value-n = Valeur de l’en-tête { $n }
compose-add-header-row = Ajouter un en-tête
compose-section-salesforce = Salesforce
compose-lookup-field = Champ de recherche
compose-lookup-help = Un champ Salesforce (comme Email) pour rechercher le lead avant de renvoyer une création, afin qu’aucun lead ne soit créé deux fois.
compose-write-back = Enregistrer des champs de la réponse sur l’utilisateur
compose-response-field = Champ de la réponse
compose-attribute = Attribut de l’utilisateur
compose-response-field-n = Champ de la réponse { $n }
compose-attribute-n = Attribut de l’utilisateur { $n }
compose-batch = Regrouper les écritures en appels sObject Collections
compose-section-test = Test
compose-test-help = Prévisualisez la requête pour un utilisateur, ou envoyez-la une fois. Un envoi de test est consigné dans le journal d’activité des messages.
compose-preview-external-id = Utilisateur existant (external id)
compose-preview-custom-user = Ou un utilisateur personnalisé (JSON)
compose-preview-custom-user-help = Par exemple {"{"}"external_id": "u1", "first_name": "Ana", "custom_attributes": {"{"}"company": "Acme"{"}"}{"}"}
compose-preview = Prévisualiser
compose-test-send = Envoyer un test

result-preview-title = Aperçu
result-test-send-title = Envoi de test
result-not-sent = Rien n’a été envoyé.
result-aborted = Interrompu :
result-render-error = Erreur de rendu :
result-status = Statut de la réponse :
result-duration = A pris { $ms } ms
result-request = Requête
result-request-headers = En-têtes de la requête
result-request-body = Corps de la requête
result-response = Réponse
result-response-headers = En-têtes de la réponse

activity-title = Journal d’activité des messages
activity-filters = Filtres
activity-filter-type = Type
activity-filter-campaign = Campagne ou Canvas
activity-filter-user = Utilisateur (external id)
activity-filter-since = Depuis
activity-filter-until = Jusqu’à
activity-any = Tous
activity-apply = Appliquer les filtres
activity-clear = Effacer les filtres
activity-times-utc = Les heures sont en UTC.
activity-bad-type = Ce type d’activité n’existe pas.
activity-bad-time = Une heure doit ressembler à 2026-01-31T12:00.
activity-deliveries = Envois récents
activity-entries = Entrées du journal
activity-none = Aucune entrée ne correspond.
activity-details = Détails
activity-details-of = Détails de l’entrée { $id }
activity-entry-title = Entrée d’activité { $id }
activity-back = Retour au journal d’activité des messages

activity-type-aborted = Interrompu
activity-type-render-error = Erreur de rendu
activity-type-retrying = Nouvelle tentative
activity-type-failed = Échoué
activity-type-write-back-failed = Échec de l’enregistrement de la réponse
activity-type-test-send = Envoi de test
activity-type-connected-content-error = Erreur Connected Content
activity-type-token-refreshed = Jeton renouvelé
activity-type-deduplicated = Doublon évité
activity-type-outcome-unknown = Résultat inconnu
activity-type-api-budget = Quota de l’API

nav-campaigns = Campagnes
campaigns-title = Campagnes
campaigns-new = Créer une campagne
campaigns-none = Aucune campagne pour l’instant.
campaign-trigger = Déclencheur
campaign-pause = Mettre en pause
campaign-pause-named = Mettre { $name } en pause
campaign-start = Démarrer
campaign-start-named = Démarrer { $name }
campaign-title-edit = Campagne « { $name } »
campaign-section-basics = Campagne
campaign-name-fixed = Le nom d’une campagne ne peut pas changer ; créez-en une nouvelle.
campaign-trigger-kind = Envoyer quand l’utilisateur
campaign-trigger-name = Attribut, événement ou produit
campaign-trigger-name-help = L’attribut personnalisé, l’événement personnalisé ou l’id de produit du déclencheur (inutile pour « ajoute une adresse e-mail » et l’API).
campaign-trigger-value = Valeur de l’attribut (facultatif)
campaign-section-message = Message
campaign-section-delivery = Audience et envoi
campaign-audience = Filtre d’audience (JSON)
campaign-audience-help = Vide : tout le monde. Comme dans l’API REST, par exemple {"{"}"attribute": "lead_stage", "equals": "Lead"{"}"}
campaign-reeligibility = Rééligibilité (minutes)
campaign-reeligibility-help = Vide : chaque utilisateur reçoit cette campagne une fois.
campaign-rate-limit = Limite d’envoi (par minute)
campaign-rate-limit-help = Vide : aucune limite. Braze accepte de 10 à 500 000.
campaign-save = Enregistrer la campagne
campaign-name-taken = Une campagne nommée « { $name } » existe ; ouvrez-la pour la modifier.
campaign-bad-audience = Le filtre d’audience n’est pas un JSON valide : { $detail }
campaign-bad-number = La rééligibilité et la limite doivent être des nombres entiers.
campaign-bad-spec = La campagne n’est pas valide : { $detail }
trigger-email-added = ajoute une adresse e-mail
trigger-attribute-changed = modifie un attribut personnalisé
trigger-custom-event = effectue un événement personnalisé
trigger-purchase = effectue un achat
trigger-api-triggered = le reçoit par l’API
status-draft = Brouillon
status-active = Active
status-paused = En pause
status-archived = Archivée
