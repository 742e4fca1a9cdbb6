-- Registered webhook endpoints, each with its own signing secrets. A rotation adds
-- a secret and gives the old one an expiry: until then deliveries carry both
-- signatures (Standard Webhooks allows several), so a receiver can switch at leisure.
-- The secrets are kept in clear: signing needs them (an HMAC key cannot be hashed).
CREATE TABLE webhook_endpoints (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant      text        NOT NULL,
    url         text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz,
    UNIQUE (tenant, url)
);

CREATE TABLE webhook_endpoint_secrets (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id bigint      NOT NULL REFERENCES webhook_endpoints (id),
    secret      text        NOT NULL CHECK (secret LIKE 'whsec\_%'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- NULL: the current secret; otherwise it signs until then, beside its successor.
    expires_at  timestamptz
);
CREATE INDEX webhook_endpoint_secrets_endpoint ON webhook_endpoint_secrets (endpoint_id, created_at);

-- The worker signs with them; only operators (the owner) register and rotate.
GRANT SELECT ON webhook_endpoints, webhook_endpoint_secrets TO boomerang_writer;
