# leadwire dashboard — Português

language-name = Português
skip-to-content = Pular para o conteúdo
nav-label = Principal
nav-templates = Modelos de webhook
nav-activity = Registro de atividades de mensagens
nav-api-docs = Documentação da API
language-switcher = Idioma
sign-out = Sair

error-forbidden = Sua função não permite isto
error-csrf = Este formulário expirou. Volte, recarregue a página e tente de novo.
error-not-found = Não encontrado
error-bad-request = Não é possível fazer este pedido
error-unavailable = Esta parte do leadwire não está rodando neste servidor
error-internal = Algo deu errado do nosso lado. O erro foi registrado.
error-back-home = Voltar ao painel

login-title = Entrar no leadwire
login-failed = O e-mail ou a senha não estão corretos.
login-email = E-mail
login-password = Senha
login-submit = Entrar

home-title = Painel
home-signed-in-as = Conectado como { $email } ({ $role }).
home-deliveries = Entregas
home-next-steps = Ir para

deliveries-by-state = Entregas de webhook por estado
column-state = Estado
column-count = Quantidade
job-queued = Na fila
job-in-flight = Enviando
job-delivered = Entregue
job-aborted = Abortado
job-failed = Falhou

templates-title = Modelos de webhook
templates-new = Criar um modelo de webhook
templates-hide-archived = Ocultar modelos arquivados
templates-show-archived = Mostrar modelos arquivados
templates-none = Ainda não há modelos de webhook.
templates-archived = Arquivado
templates-duplicate = Duplicar
templates-duplicate-named = Duplicar { $name }
templates-archive = Arquivar
templates-archive-named = Arquivar { $name }
templates-copy-name = { $name } (cópia)

column-name = Nome
column-method = Método
column-url = URL
column-updated = Última edição
column-actions = Ações
column-status = Status HTTP
column-user = Usuário
column-campaign = Campanha ou Canvas
column-template = Modelo
column-attempts = Tentativas
column-error = Último erro
column-time = Hora
column-type = Tipo
column-message = Mensagem
column-step = Etapa do Canvas
column-delivery-id = Id da entrega

preview-user-not-object = O usuário personalizado deve ser um objeto JSON.
preview-user-bad-json = O usuário personalizado não é um JSON válido: { $detail }

finding-error = Erro:
finding-warning = Aviso:
finding-line-column = linha { $line }, coluna { $column }:
finding-suggestion = Escreva “{ $text }”.

compose-title-new = Criar um modelo de webhook
compose-title-edit = Editar “{ $name }”
compose-saved = O modelo foi salvo.
compose-problems = { $count ->
    [one] Há 1 problema a corrigir
   *[other] Há { $count } problemas a corrigir
}
compose-warnings = { $count ->
    [one] O verificador tem 1 sugestão
   *[other] O verificador tem { $count } sugestões
}
compose-save = Salvar modelo
compose-section-template = Modelo
compose-name = Nome do modelo
compose-description = Descrição
compose-section-request = Compor: requisição
compose-url = URL do webhook
compose-method = Método HTTP
compose-section-body = Corpo da requisição
compose-body-mode = Formato do corpo
compose-body-kv = Pares chave/valor JSON
compose-body-raw = Texto bruto
compose-body-none = Sem corpo
compose-body-pairs = Pares chave/valor
compose-key = Chave
compose-value = Valor
compose-key-n = Chave { $n }
compose-value-n = Valor { $n }
compose-add-body-row = Adicionar um par chave/valor
compose-raw-body = Corpo em texto bruto
compose-value-typing = Os valores são enviados como
compose-typing-strings = Textos
compose-typing-json = Valores JSON (números, true/false mantêm o tipo)
compose-section-headers = Cabeçalhos da requisição
compose-header-pairs = Cabeçalhos
compose-header-name = Nome do cabeçalho
compose-header-name-n = Nome do cabeçalho { $n }
compose-header-value-n = Valor do cabeçalho { $n }
compose-add-header-row = Adicionar um cabeçalho
compose-section-salesforce = Salesforce
compose-lookup-field = Campo de busca
compose-lookup-help = Um campo do Salesforce (como Email) para procurar o lead antes de reenviar uma criação, para que nenhum lead seja criado duas vezes.
compose-write-back = Salvar campos da resposta no usuário
compose-response-field = Campo da resposta
compose-attribute = Atributo do usuário
compose-response-field-n = Campo da resposta { $n }
compose-attribute-n = Atributo do usuário { $n }
compose-batch = Agrupar gravações em chamadas sObject Collections
compose-section-test = Teste
compose-test-help = Visualize a requisição para um usuário ou envie-a uma vez. Um envio de teste fica no registro de atividades de mensagens.
compose-preview-external-id = Usuário existente (external id)
compose-preview-custom-user = Ou um usuário personalizado (JSON)
compose-preview-custom-user-help = Por exemplo {"{"}"external_id": "u1", "first_name": "Ana", "custom_attributes": {"{"}"company": "Acme"{"}"}{"}"}
compose-preview = Visualizar
compose-test-send = Enviar teste

result-preview-title = Visualização
result-test-send-title = Envio de teste
result-not-sent = Nada foi enviado.
result-aborted = Abortado:
result-render-error = Erro de renderização:
result-status = Status da resposta:
result-duration = Levou { $ms } ms
result-request = Requisição
result-request-headers = Cabeçalhos da requisição
result-request-body = Corpo da requisição
result-response = Resposta
result-response-headers = Cabeçalhos da resposta

activity-title = Registro de atividades de mensagens
activity-filters = Filtros
activity-filter-type = Tipo
activity-filter-campaign = Campanha ou Canvas
activity-filter-user = Usuário (external id)
activity-filter-since = De
activity-filter-until = Até
activity-any = Qualquer
activity-apply = Aplicar filtros
activity-clear = Limpar filtros
activity-times-utc = Horários em UTC.
activity-bad-type = Esse tipo de atividade não existe.
activity-bad-time = Um horário deve ser como 2026-01-31T12:00.
activity-deliveries = Entregas recentes
activity-entries = Entradas do registro
activity-none = Nenhuma entrada corresponde.
activity-details = Detalhes
activity-details-of = Detalhes da entrada { $id }
activity-entry-title = Entrada de atividade { $id }
activity-back = Voltar ao registro de atividades de mensagens

activity-type-aborted = Abortado
activity-type-render-error = Erro de renderização
activity-type-retrying = Tentando de novo
activity-type-failed = Falhou
activity-type-write-back-failed = Falha ao salvar a resposta
activity-type-test-send = Envio de teste
activity-type-connected-content-error = Erro de Connected Content
activity-type-token-refreshed = Token renovado
activity-type-deduplicated = Duplicata evitada
activity-type-outcome-unknown = Resultado desconhecido
activity-type-api-budget = Cota da API

nav-campaigns = Campanhas
campaigns-title = Campanhas
campaigns-new = Criar uma campanha
campaigns-none = Ainda não há campanhas.
campaign-trigger = Gatilho
campaign-pause = Pausar
campaign-pause-named = Pausar { $name }
campaign-start = Iniciar
campaign-start-named = Iniciar { $name }
campaign-title-edit = Campanha “{ $name }”
campaign-section-basics = Campanha
campaign-name-fixed = O nome de uma campanha não pode mudar; crie uma nova campanha.
campaign-trigger-kind = Enviar quando o usuário
campaign-trigger-name = Atributo, evento ou produto
campaign-trigger-name-help = O atributo personalizado, evento personalizado ou id de produto do gatilho (não usado por “adiciona um e-mail” nem pela API).
campaign-trigger-value = Valor do atributo (opcional)
campaign-section-message = Mensagem
campaign-section-delivery = Público e entrega
campaign-audience = Filtro de público (JSON)
campaign-audience-help = Vazio: todos. Como na API REST, por exemplo {"{"}"attribute": "lead_stage", "equals": "Lead"{"}"}
campaign-reeligibility = Reelegibilidade (minutos)
campaign-reeligibility-help = Vazio: cada usuário recebe esta campanha uma vez.
campaign-rate-limit = Limite de envio (por minuto)
campaign-rate-limit-help = Vazio: sem limite. O Braze aceita de 10 a 500.000.
campaign-save = Salvar campanha
campaign-name-taken = Já existe uma campanha chamada “{ $name }”; abra-a para alterá-la.
campaign-bad-audience = O filtro de público não é JSON válido: { $detail }
campaign-bad-number = Reelegibilidade e limite devem ser números inteiros.
campaign-bad-spec = A campanha não é válida: { $detail }
trigger-email-added = adiciona um endereço de e-mail
trigger-attribute-changed = altera um atributo personalizado
trigger-custom-event = realiza um evento personalizado
trigger-purchase = faz uma compra
trigger-api-triggered = recebe pela API
status-draft = Rascunho
status-active = Ativa
status-paused = Pausada
status-archived = Arquivada
