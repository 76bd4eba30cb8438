# leadwire dashboard — English (the reference catalogue: every other language has the same ids).

language-name = English
skip-to-content = Skip to content
nav-label = Main
nav-templates = Webhook templates
nav-activity = Message activity log
nav-api-docs = API docs
language-switcher = Language
sign-out = Sign out

error-forbidden = Your role does not allow this
error-csrf = This form has expired. Go back, reload the page and try again.
error-not-found = Not found
error-bad-request = This request cannot be done
error-unavailable = This part of leadwire is not running on this server
error-internal = Something went wrong on our side. The error was logged.
error-back-home = Back to the dashboard

login-title = Sign in to leadwire
login-failed = The email or password is not right.
login-email = Email
login-password = Password
login-submit = Sign in

home-title = Dashboard
home-signed-in-as = Signed in as { $email } ({ $role }).
home-deliveries = Deliveries
home-next-steps = Go to

deliveries-by-state = Webhook deliveries by state
column-state = State
column-count = Count
job-queued = Queued
job-in-flight = Sending
job-delivered = Delivered
job-aborted = Aborted
job-failed = Failed

templates-title = Webhook templates
templates-new = Create a webhook template
templates-hide-archived = Hide archived templates
templates-show-archived = Show archived templates
templates-none = No webhook templates yet.
templates-archived = Archived
templates-duplicate = Duplicate
templates-duplicate-named = Duplicate { $name }
templates-archive = Archive
templates-archive-named = Archive { $name }
templates-copy-name = { $name } (copy)

column-name = Name
column-method = Method
column-url = URL
column-updated = Last edited
column-actions = Actions
column-status = HTTP status
column-user = User
column-campaign = Campaign or Canvas
column-template = Template
column-attempts = Attempts
column-error = Last error
column-time = Time
column-type = Type
column-message = Message
column-step = Canvas step
column-delivery-id = Delivery id

preview-user-not-object = The custom user must be a JSON object.
preview-user-bad-json = The custom user is not valid JSON: { $detail }

finding-error = Error:
finding-warning = Warning:
finding-line-column = line { $line }, column { $column }:
finding-suggestion = Write “{ $text }” instead.

compose-title-new = Create a webhook template
compose-title-edit = Edit “{ $name }”
compose-saved = The template was saved.
compose-problems = { $count ->
    [one] There is 1 problem to fix
   *[other] There are { $count } problems to fix
}
compose-warnings = { $count ->
    [one] The linter has 1 suggestion
   *[other] The linter has { $count } suggestions
}
compose-save = Save template
compose-section-template = Template
compose-name = Template name
compose-description = Description
compose-section-request = Compose: request
compose-url = Webhook URL
compose-method = HTTP method
compose-section-body = Request body
compose-body-mode = Body format
compose-body-kv = JSON key/value pairs
compose-body-raw = Raw text
compose-body-none = No body
compose-body-pairs = Key/value pairs
compose-key = Key
compose-value = Value
compose-key-n = Key { $n }
compose-value-n = Value { $n }
compose-add-body-row = Add a key/value pair
compose-raw-body = Raw text body
compose-value-typing = Values are sent as
compose-typing-strings = Strings
compose-typing-json = JSON values (numbers, true/false stay typed)
compose-section-headers = Request headers
compose-header-pairs = Headers
compose-header-name = Header name
compose-header-name-n = Header name { $n }
compose-header-value-n = Header value { $n }
compose-add-header-row = Add a header
compose-section-salesforce = Salesforce
compose-lookup-field = Lookup field
compose-lookup-help = A Salesforce field (such as Email) to look a lead up by before a create is sent again, so no lead is created twice.
compose-write-back = Save response fields to the user
compose-response-field = Response field
compose-attribute = User attribute
compose-response-field-n = Response field { $n }
compose-attribute-n = User attribute { $n }
compose-batch = Batch writes into sObject Collections calls
compose-section-test = Test
compose-test-help = Preview the request for a user, or send it once. A test send is logged in the message activity log.
compose-preview-external-id = Existing user (external id)
compose-preview-custom-user = Or a custom user (JSON)
compose-preview-custom-user-help = For example {"{"}"external_id": "u1", "first_name": "Ana", "custom_attributes": {"{"}"company": "Acme"{"}"}{"}"}
compose-preview = Preview
compose-test-send = Send test

result-preview-title = Preview
result-test-send-title = Test send
result-not-sent = Nothing was sent.
result-aborted = Aborted:
result-render-error = Render error:
result-status = Response status:
result-duration = Took { $ms } ms
result-request = Request
result-request-headers = Request headers
result-request-body = Request body
result-response = Response
result-response-headers = Response headers

activity-title = Message activity log
activity-filters = Filters
activity-filter-type = Type
activity-filter-campaign = Campaign or Canvas
activity-filter-user = User (external id)
activity-filter-since = From
activity-filter-until = Until
activity-any = Any
activity-apply = Apply filters
activity-clear = Clear filters
activity-times-utc = Times are UTC.
activity-bad-type = That activity type does not exist.
activity-bad-time = A time must look like 2026-01-31T12:00.
activity-deliveries = Recent deliveries
activity-entries = Log entries
activity-none = No entries match.
activity-details = Details
activity-details-of = Details of entry { $id }
activity-entry-title = Activity entry { $id }
activity-back = Back to the message activity log

activity-type-aborted = Aborted
activity-type-render-error = Render error
activity-type-retrying = Retrying
activity-type-failed = Failed
activity-type-write-back-failed = Write-back failed
activity-type-test-send = Test send
activity-type-connected-content-error = Connected Content error
activity-type-token-refreshed = Token refreshed
activity-type-deduplicated = Duplicate avoided
activity-type-outcome-unknown = Outcome unknown
activity-type-api-budget = API budget

nav-campaigns = Campaigns
campaigns-title = Campaigns
campaigns-new = Create a campaign
campaigns-none = No campaigns yet.
campaign-trigger = Trigger
campaign-pause = Pause
campaign-pause-named = Pause { $name }
campaign-start = Start
campaign-start-named = Start { $name }
campaign-title-edit = Campaign “{ $name }”
campaign-section-basics = Campaign
campaign-name-fixed = A campaign’s name cannot change; create a new campaign instead.
campaign-trigger-kind = Send when the user
campaign-trigger-name = Attribute, event or product
campaign-trigger-name-help = The custom attribute, custom event or product id the trigger names (not used by “adds an email address” or the API).
campaign-trigger-value = Attribute value (optional)
campaign-section-message = Message
campaign-section-delivery = Audience and delivery
campaign-audience = Audience filter (JSON)
campaign-audience-help = Empty: everyone. As in the REST API, for example {"{"}"attribute": "lead_stage", "equals": "Lead"{"}"}
campaign-reeligibility = Re-eligibility (minutes)
campaign-reeligibility-help = Empty: a user receives this campaign once.
campaign-rate-limit = Rate limit (sends per minute)
campaign-rate-limit-help = Empty: no limit. Braze allows 10 to 500,000.
campaign-save = Save campaign
campaign-name-taken = A campaign named “{ $name }” exists; open it to change it.
campaign-bad-audience = The audience filter is not valid JSON: { $detail }
campaign-bad-number = Re-eligibility and rate limit must be whole numbers.
campaign-bad-spec = The campaign is not valid: { $detail }
trigger-email-added = adds an email address
trigger-attribute-changed = changes a custom attribute
trigger-custom-event = performs a custom event
trigger-purchase = makes a purchase
trigger-api-triggered = is sent it through the API
status-draft = Draft
status-active = Active
status-paused = Paused
status-archived = Archived
