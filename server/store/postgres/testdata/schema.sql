-- The schema the migrations give, from PostgreSQL's catalog (TestSchemaIsTheCommittedOne checks it).

CREATE TABLE api_keys (
    id uuid NOT NULL,
    workspace_id uuid NOT NULL,
    name text NOT NULL,
    hash bytea NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone,
    revoked_at timestamp with time zone,
    last_used_at timestamp with time zone,
    CONSTRAINT api_keys_hash_key UNIQUE (hash),
    CONSTRAINT api_keys_pkey PRIMARY KEY (id),
    CONSTRAINT api_keys_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES workspaces(id)
);

CREATE TABLE feedback (
    id uuid NOT NULL,
    workspace_id uuid NOT NULL,
    trace_id text NOT NULL,
    value smallint NOT NULL,
    weight double precision NOT NULL,
    metadata jsonb NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    token_id text,
    m_user text,
    m_organisation text,
    m_prompt text,
    m_environment text,
    m_strings smallint NOT NULL DEFAULT 0,
    m_first_bits smallint NOT NULL DEFAULT 0,
    CONSTRAINT feedback_metadata_check CHECK ((jsonb_typeof(metadata) = 'object'::text)),
    CONSTRAINT feedback_pkey PRIMARY KEY (id),
    CONSTRAINT feedback_value_check CHECK (((value >= '-10'::integer) AND (value <= 10))),
    CONSTRAINT feedback_weight_check CHECK (((weight >= (0)::double precision) AND (weight <= (1)::double precision))),
    CONSTRAINT feedback_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES workspaces(id)
);
CREATE INDEX feedback_metadata ON public.feedback USING gin (metadata jsonb_path_ops);
CREATE INDEX feedback_workspace_created_id ON public.feedback USING btree (workspace_id, created_at, id);
CREATE INDEX feedback_workspace_m_environment ON public.feedback USING btree (workspace_id, m_environment, created_at) WHERE (m_environment IS NOT NULL);
CREATE INDEX feedback_workspace_m_organisation ON public.feedback USING btree (workspace_id, m_organisation, created_at) WHERE (m_organisation IS NOT NULL);
CREATE INDEX feedback_workspace_m_prompt ON public.feedback USING btree (workspace_id, m_prompt, created_at) WHERE (m_prompt IS NOT NULL);
CREATE INDEX feedback_workspace_m_user ON public.feedback USING btree (workspace_id, m_user, created_at) WHERE (m_user IS NOT NULL);
CREATE UNIQUE INDEX feedback_workspace_token ON public.feedback USING btree (workspace_id, token_id) WHERE (token_id IS NOT NULL);
CREATE INDEX feedback_workspace_trace ON public.feedback USING btree (workspace_id, trace_id, created_at, id);

CREATE TABLE group_rollups (
    workspace_id uuid NOT NULL,
    meta_key text NOT NULL,
    grain integer NOT NULL,
    slot bigint NOT NULL,
    meta_value text NOT NULL,
    n bigint NOT NULL,
    traces bigint NOT NULL,
    sum_weighted double precision NOT NULL,
    CONSTRAINT group_rollups_pkey PRIMARY KEY (workspace_id, grain, slot, meta_key, meta_value)
);

CREATE TABLE idempotency (
    scope text NOT NULL,
    key text NOT NULL,
    fingerprint bytea NOT NULL,
    message text NOT NULL,
    ids jsonb NOT NULL,
    created_at timestamp with time zone NOT NULL,
    replaced integer NOT NULL DEFAULT 0,
    CONSTRAINT idempotency_pkey PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_created ON public.idempotency USING btree (created_at);

CREATE TABLE rollups (
    workspace_id uuid NOT NULL,
    meta_key text NOT NULL,
    grain integer NOT NULL,
    slot bigint NOT NULL,
    meta_value text NOT NULL,
    value smallint NOT NULL,
    n bigint NOT NULL,
    sum_weighted double precision NOT NULL,
    CONSTRAINT rollups_pkey PRIMARY KEY (workspace_id, grain, slot, meta_key, meta_value, value)
);

CREATE TABLE secrets (
    name text NOT NULL,
    secret bytea NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT secrets_pkey PRIMARY KEY (name)
);

CREATE TABLE settings (
    name text NOT NULL,
    value text NOT NULL,
    CONSTRAINT settings_pkey PRIMARY KEY (name)
);

CREATE TABLE trace_meta_values (
    workspace_id uuid NOT NULL,
    trace_id text NOT NULL,
    meta_key text NOT NULL,
    meta_value text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    id uuid NOT NULL,
    CONSTRAINT trace_meta_values_pkey PRIMARY KEY (workspace_id, trace_id, meta_key, meta_value, created_at, id)
);

CREATE TABLE webhook_attempts (
    seq bigint NOT NULL DEFAULT nextval('webhook_attempts_seq_seq'::regclass),
    webhook_id uuid NOT NULL,
    event_id uuid NOT NULL,
    event_seq bigint NOT NULL,
    kind smallint NOT NULL,
    n integer NOT NULL,
    at timestamp with time zone NOT NULL,
    outcome text NOT NULL,
    status integer NOT NULL,
    latency_us bigint NOT NULL,
    error text NOT NULL,
    next_attempt_at timestamp with time zone,
    CONSTRAINT webhook_attempts_pkey PRIMARY KEY (seq)
);
CREATE INDEX webhook_attempts_by_time ON public.webhook_attempts USING btree (at);
CREATE INDEX webhook_attempts_by_webhook ON public.webhook_attempts USING btree (webhook_id, seq);
CREATE INDEX webhook_attempts_failed ON public.webhook_attempts USING btree (webhook_id, seq) WHERE (outcome <> 'delivered'::text);

CREATE TABLE webhook_events (
    seq bigint NOT NULL DEFAULT nextval('webhook_events_seq_seq'::regclass),
    xid bigint NOT NULL DEFAULT ((pg_current_xact_id())::text)::bigint,
    id uuid NOT NULL,
    workspace_id uuid NOT NULL,
    webhook_id uuid,
    kind smallint NOT NULL,
    at timestamp with time zone NOT NULL,
    feedback_id uuid NOT NULL,
    trace_id text NOT NULL,
    value smallint NOT NULL,
    weight double precision NOT NULL,
    metadata jsonb NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT webhook_events_pkey PRIMARY KEY (seq)
);
CREATE INDEX webhook_events_by_time ON public.webhook_events USING btree (at);
CREATE INDEX webhook_events_redelivered ON public.webhook_events USING btree (webhook_id) WHERE (webhook_id IS NOT NULL);
CREATE INDEX webhook_events_walk ON public.webhook_events USING btree (workspace_id, xid, seq);

CREATE TABLE webhooks (
    id uuid NOT NULL,
    workspace_id uuid NOT NULL,
    url text NOT NULL,
    kinds text NOT NULL,
    filter jsonb NOT NULL,
    description text NOT NULL,
    secret bytea NOT NULL,
    previous_secret bytea,
    previous_until timestamp with time zone,
    state text NOT NULL,
    state_reason text NOT NULL,
    start_seq bigint NOT NULL,
    position_xid bigint NOT NULL DEFAULT 0,
    position_seq bigint NOT NULL DEFAULT 0,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamp with time zone NOT NULL DEFAULT '-infinity'::timestamp with time zone,
    lease text NOT NULL DEFAULT ''::text,
    lease_until timestamp with time zone NOT NULL DEFAULT '-infinity'::timestamp with time zone,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT webhooks_pkey PRIMARY KEY (id),
    CONSTRAINT webhooks_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES workspaces(id)
);
CREATE INDEX webhooks_by_workspace ON public.webhooks USING btree (workspace_id, created_at, id);

CREATE TABLE workspaces (
    id uuid NOT NULL,
    name text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT workspaces_name_key UNIQUE (name),
    CONSTRAINT workspaces_pkey PRIMARY KEY (id)
);
