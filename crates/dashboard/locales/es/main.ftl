# leadwire dashboard — Español

language-name = Español
skip-to-content = Saltar al contenido
nav-label = Principal
nav-templates = Plantillas de webhook
nav-activity = Registro de actividad de mensajes
nav-api-docs = Documentación de la API
language-switcher = Idioma
sign-out = Cerrar sesión

error-forbidden = Tu rol no permite esto
error-csrf = Este formulario ha caducado. Vuelve, recarga la página e inténtalo de nuevo.
error-not-found = No encontrado
error-bad-request = No se puede hacer esta solicitud
error-unavailable = Esta parte de leadwire no se ejecuta en este servidor
error-internal = Algo salió mal de nuestro lado. El error quedó registrado.
error-back-home = Volver al panel

login-title = Iniciar sesión en leadwire
login-failed = El correo o la contraseña no son correctos.
login-email = Correo electrónico
login-password = Contraseña
login-submit = Iniciar sesión

home-title = Panel
home-signed-in-as = Sesión iniciada como { $email } ({ $role }).
home-deliveries = Entregas
home-next-steps = Ir a

deliveries-by-state = Entregas de webhook por estado
column-state = Estado
column-count = Cantidad
job-queued = En cola
job-in-flight = Enviando
job-delivered = Entregado
job-aborted = Abortado
job-failed = Fallido

templates-title = Plantillas de webhook
templates-new = Crear una plantilla de webhook
templates-hide-archived = Ocultar plantillas archivadas
templates-show-archived = Mostrar plantillas archivadas
templates-none = Todavía no hay plantillas de webhook.
templates-archived = Archivada
templates-duplicate = Duplicar
templates-duplicate-named = Duplicar { $name }
templates-archive = Archivar
templates-archive-named = Archivar { $name }
templates-copy-name = { $name } (copia)

column-name = Nombre
column-method = Método
column-url = URL
column-updated = Última edición
column-actions = Acciones
column-status = Estado HTTP
column-user = Usuario
column-campaign = Campaña o Canvas
column-template = Plantilla
column-attempts = Intentos
column-error = Último error
column-time = Hora
column-type = Tipo
column-message = Mensaje
column-step = Paso del Canvas
column-delivery-id = Id de entrega

preview-user-not-object = El usuario personalizado debe ser un objeto JSON.
preview-user-bad-json = El usuario personalizado no es JSON válido: { $detail }

finding-error = Error:
finding-warning = Aviso:
finding-line-column = línea { $line }, columna { $column }:
finding-suggestion = Escribe «{ $text }».

compose-title-new = Crear una plantilla de webhook
compose-title-edit = Editar «{ $name }»
compose-saved = La plantilla se guardó.
compose-problems = { $count ->
    [one] Hay 1 problema que corregir
   *[other] Hay { $count } problemas que corregir
}
compose-warnings = { $count ->
    [one] El verificador tiene 1 sugerencia
   *[other] El verificador tiene { $count } sugerencias
}
compose-save = Guardar plantilla
compose-section-template = Plantilla
compose-name = Nombre de la plantilla
compose-description = Descripción
compose-section-request = Redactar: solicitud
compose-url = URL del webhook
compose-method = Método HTTP
compose-section-body = Cuerpo de la solicitud
compose-body-mode = Formato del cuerpo
compose-body-kv = Pares clave/valor JSON
compose-body-raw = Texto sin formato
compose-body-none = Sin cuerpo
compose-body-pairs = Pares clave/valor
compose-key = Clave
compose-value = Valor
compose-key-n = Clave { $n }
compose-value-n = Valor { $n }
compose-add-body-row = Añadir un par clave/valor
compose-raw-body = Cuerpo de texto sin formato
compose-value-typing = Los valores se envían como
compose-typing-strings = Cadenas
compose-typing-json = Valores JSON (números y true/false conservan su tipo)
compose-section-headers = Encabezados de la solicitud
compose-header-pairs = Encabezados
compose-header-name = Nombre del encabezado
compose-header-name-n = Nombre del encabezado { $n }
compose-header-value-n = Valor del encabezado { $n }
compose-add-header-row = Añadir un encabezado
compose-section-salesforce = Salesforce
compose-lookup-field = Campo de búsqueda
compose-lookup-help = Un campo de Salesforce (como Email) para buscar el lead antes de reenviar una creación, para que ningún lead se cree dos veces.
compose-write-back = Guardar campos de la respuesta en el usuario
compose-response-field = Campo de la respuesta
compose-attribute = Atributo del usuario
compose-response-field-n = Campo de la respuesta { $n }
compose-attribute-n = Atributo del usuario { $n }
compose-batch = Agrupar escrituras en llamadas sObject Collections
compose-section-test = Prueba
compose-test-help = Previsualiza la solicitud para un usuario o envíala una vez. Un envío de prueba queda en el registro de actividad de mensajes.
compose-preview-external-id = Usuario existente (external id)
compose-preview-custom-user = O un usuario personalizado (JSON)
compose-preview-custom-user-help = Por ejemplo {"{"}"external_id": "u1", "first_name": "Ana", "custom_attributes": {"{"}"company": "Acme"{"}"}{"}"}
compose-preview = Previsualizar
compose-test-send = Enviar prueba

result-preview-title = Vista previa
result-test-send-title = Envío de prueba
result-not-sent = No se envió nada.
result-aborted = Abortado:
result-render-error = Error de renderizado:
result-status = Estado de la respuesta:
result-duration = Tardó { $ms } ms
result-request = Solicitud
result-request-headers = Encabezados de la solicitud
result-request-body = Cuerpo de la solicitud
result-response = Respuesta
result-response-headers = Encabezados de la respuesta

activity-title = Registro de actividad de mensajes
activity-filters = Filtros
activity-filter-type = Tipo
activity-filter-campaign = Campaña o Canvas
activity-filter-user = Usuario (external id)
activity-filter-since = Desde
activity-filter-until = Hasta
activity-any = Cualquiera
activity-apply = Aplicar filtros
activity-clear = Quitar filtros
activity-times-utc = Las horas están en UTC.
activity-bad-type = Ese tipo de actividad no existe.
activity-bad-time = Una hora debe tener la forma 2026-01-31T12:00.
activity-deliveries = Entregas recientes
activity-entries = Entradas del registro
activity-none = Ninguna entrada coincide.
activity-details = Detalles
activity-details-of = Detalles de la entrada { $id }
activity-entry-title = Entrada de actividad { $id }
activity-back = Volver al registro de actividad de mensajes

activity-type-aborted = Abortado
activity-type-render-error = Error de renderizado
activity-type-retrying = Reintentando
activity-type-failed = Fallido
activity-type-write-back-failed = Falló el guardado de la respuesta
activity-type-test-send = Envío de prueba
activity-type-connected-content-error = Error de Connected Content
activity-type-token-refreshed = Token renovado
activity-type-deduplicated = Duplicado evitado
activity-type-outcome-unknown = Resultado desconocido
activity-type-api-budget = Cuota de la API

nav-campaigns = Campañas
campaigns-title = Campañas
campaigns-new = Crear una campaña
campaigns-none = Todavía no hay campañas.
campaign-trigger = Disparador
campaign-pause = Pausar
campaign-pause-named = Pausar { $name }
campaign-start = Iniciar
campaign-start-named = Iniciar { $name }
campaign-title-edit = Campaña «{ $name }»
campaign-section-basics = Campaña
campaign-name-fixed = El nombre de una campaña no puede cambiar; crea una campaña nueva.
campaign-trigger-kind = Enviar cuando el usuario
campaign-trigger-name = Atributo, evento o producto
campaign-trigger-name-help = El atributo personalizado, evento personalizado o id de producto del disparador (no se usa con «añade un correo» ni con la API).
campaign-trigger-value = Valor del atributo (opcional)
campaign-section-message = Mensaje
campaign-section-delivery = Audiencia y entrega
campaign-audience = Filtro de audiencia (JSON)
campaign-audience-help = Vacío: todos. Como en la API REST, por ejemplo {"{"}"attribute": "lead_stage", "equals": "Lead"{"}"}
campaign-reeligibility = Reelegibilidad (minutos)
campaign-reeligibility-help = Vacío: cada usuario recibe esta campaña una vez.
campaign-rate-limit = Límite de envío (por minuto)
campaign-rate-limit-help = Vacío: sin límite. Braze admite de 10 a 500.000.
campaign-save = Guardar campaña
campaign-name-taken = Ya existe una campaña llamada «{ $name }»; ábrela para cambiarla.
campaign-bad-audience = El filtro de audiencia no es JSON válido: { $detail }
campaign-bad-number = La reelegibilidad y el límite deben ser números enteros.
campaign-bad-spec = La campaña no es válida: { $detail }
trigger-email-added = añade una dirección de correo
trigger-attribute-changed = cambia un atributo personalizado
trigger-custom-event = realiza un evento personalizado
trigger-purchase = hace una compra
trigger-api-triggered = lo recibe por la API
status-draft = Borrador
status-active = Activa
status-paused = Pausada
status-archived = Archivada
