-- Spec §5 DDL (rediska-spec-pack-v0.4), kept verbatim: tests/core/test_schema.py checks
-- the migrated schema against it.
-- Providers
CREATE TABLE providers (
  provider_id VARCHAR(32) PRIMARY KEY,
  display_name VARCHAR(64) NOT NULL,
  enabled BOOLEAN NOT NULL DEFAULT TRUE,
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Single-user auth (local-only)
CREATE TABLE local_users (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  username VARCHAR(64) NOT NULL UNIQUE,
  password_hash VARCHAR(255) NOT NULL, -- Argon2
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  last_login_at DATETIME NULL
);

-- Session store (server-side sessions, optional; otherwise use signed cookies)
CREATE TABLE sessions (
  id CHAR(36) PRIMARY KEY,              -- uuid
  user_id BIGINT NOT NULL,
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  expires_at DATETIME NOT NULL,
  data_json JSON NULL,
  CONSTRAINT fk_sessions_user FOREIGN KEY (user_id) REFERENCES local_users(id)
);

-- User identities per provider (NEW in v0.4)
-- Represents the personas/accounts the user can use to interact through a provider
CREATE TABLE identities (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  provider_id VARCHAR(32) NOT NULL,

  -- Provider-specific identifier (e.g., Reddit username)
  external_username VARCHAR(128) NOT NULL,
  external_user_id VARCHAR(128) NULL,

  -- Display name for UI (user-defined, can differ from external_username)
  display_name VARCHAR(128) NOT NULL,

  -- Voice/persona configuration for LLM-generated content
  voice_config_json JSON NULL,  -- { "system_prompt": "...", "tone": "...", "style": "..." }

  -- Default identity for this provider (exactly one per provider must be true)
  is_default BOOLEAN NOT NULL DEFAULT FALSE,

  -- Status
  is_active BOOLEAN NOT NULL DEFAULT TRUE,

  -- Timestamps
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,

  UNIQUE KEY uq_identity (provider_id, external_username),
  KEY idx_identity_provider (provider_id),
  KEY idx_identity_default (provider_id, is_default),
  CONSTRAINT fk_identity_provider FOREIGN KEY (provider_id) REFERENCES providers(provider_id)
);

-- Counterpart identities on providers (people we interact with)
CREATE TABLE external_accounts (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  provider_id VARCHAR(32) NOT NULL,
  external_user_id VARCHAR(128) NULL,
  external_username VARCHAR(128) NOT NULL,

  remote_status ENUM('active','deleted','suspended','unknown') NOT NULL DEFAULT 'unknown',
  remote_status_last_seen_at DATETIME NULL,

  analysis_state ENUM('not_analyzed','analyzed','needs_refresh') NOT NULL DEFAULT 'not_analyzed',
  contact_state ENUM('not_contacted','contacted') NOT NULL DEFAULT 'not_contacted',
  engagement_state ENUM('not_engaged','engaged') NOT NULL DEFAULT 'not_engaged',

  first_analyzed_at DATETIME NULL,
  first_contacted_at DATETIME NULL,
  first_inbound_after_contact_at DATETIME NULL,

  -- local delete/purge controls (local delete is permitted)
  deleted_at DATETIME NULL,
  purged_at DATETIME NULL,

  -- optional: last time we synced/fetched anything for the account
  last_fetched_at DATETIME NULL,

  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,

  UNIQUE KEY uq_account (provider_id, external_username),
  KEY idx_remote_status (provider_id, remote_status),
  KEY idx_states (analysis_state, contact_state, engagement_state),
  CONSTRAINT fk_account_provider FOREIGN KEY (provider_id) REFERENCES providers(provider_id)
);

-- Conversations/threads (now identity-aware)
CREATE TABLE conversations (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  provider_id VARCHAR(32) NOT NULL,
  external_conversation_id VARCHAR(128) NOT NULL,
  counterpart_account_id BIGINT NOT NULL,

  -- Identity used for this conversation (required)
  identity_id BIGINT NOT NULL,

  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,

  last_activity_at DATETIME NULL,
  archived_at DATETIME NULL,

  -- local delete (hide) only
  deleted_at DATETIME NULL,

  UNIQUE KEY uq_conv (provider_id, external_conversation_id),
  KEY idx_conv_counterpart (counterpart_account_id),
  KEY idx_conv_identity (identity_id),
  KEY idx_conv_last_activity (last_activity_at),
  CONSTRAINT fk_conv_provider FOREIGN KEY (provider_id) REFERENCES providers(provider_id),
  CONSTRAINT fk_conv_account FOREIGN KEY (counterpart_account_id) REFERENCES external_accounts(id),
  CONSTRAINT fk_conv_identity FOREIGN KEY (identity_id) REFERENCES identities(id)
);

-- Messages within conversations (identity tracked for outgoing)
CREATE TABLE messages (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  provider_id VARCHAR(32) NOT NULL,
  external_message_id VARCHAR(128) NULL, -- may be null if provider lacks stable IDs for some events
  conversation_id BIGINT NOT NULL,

  -- Identity that sent this message (NULL for incoming messages)
  identity_id BIGINT NULL,

  direction ENUM('in','out','system') NOT NULL,
  sent_at DATETIME NOT NULL,

  body_text MEDIUMTEXT NULL,

  remote_visibility ENUM('visible','deleted_by_author','removed','unknown') NOT NULL DEFAULT 'unknown',
  remote_deleted_at DATETIME NULL,

  -- local delete (hide)
  deleted_at DATETIME NULL,

  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,

  UNIQUE KEY uq_msg_ext (provider_id, external_message_id),
  KEY idx_msg_conv_time (conversation_id, sent_at),
  KEY idx_msg_identity (identity_id),
  CONSTRAINT fk_msg_provider FOREIGN KEY (provider_id) REFERENCES providers(provider_id),
  CONSTRAINT fk_msg_conv FOREIGN KEY (conversation_id) REFERENCES conversations(id),
  CONSTRAINT fk_msg_identity FOREIGN KEY (identity_id) REFERENCES identities(id)
);

-- Attachments (local filesystem)
CREATE TABLE attachments (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  message_id BIGINT NULL,

  storage_backend ENUM('fs') NOT NULL DEFAULT 'fs',
  storage_key VARCHAR(512) NOT NULL, -- relative key under ATTACHMENTS_PATH recommended

  sha256 CHAR(64) NOT NULL,
  mime_type VARCHAR(128) NOT NULL,
  size_bytes BIGINT NOT NULL,

  width_px INT NULL,
  height_px INT NULL,

  remote_visibility ENUM('visible','deleted_by_author','removed','unknown') NOT NULL DEFAULT 'unknown',
  remote_deleted_at DATETIME NULL,

  deleted_at DATETIME NULL,
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,

  KEY idx_attach_msg (message_id),
  KEY idx_attach_sha (sha256),
  CONSTRAINT fk_attach_msg FOREIGN KEY (message_id) REFERENCES messages(id)
);

-- Saved posts/leads from provider locations (e.g., subreddits)
CREATE TABLE lead_posts (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  provider_id VARCHAR(32) NOT NULL,

  source_location VARCHAR(128) NOT NULL, -- "location" = subreddit / channel / etc.
  external_post_id VARCHAR(128) NOT NULL,
  post_url VARCHAR(512) NOT NULL,

  author_account_id BIGINT NULL,

  title VARCHAR(512) NULL,
  body_text MEDIUMTEXT NULL,
  post_created_at DATETIME NULL,

  status ENUM('new','saved','ignored','contact_queued','contacted') NOT NULL DEFAULT 'new',

  remote_visibility ENUM('visible','deleted_by_author','removed','unknown') NOT NULL DEFAULT 'unknown',
  remote_deleted_at DATETIME NULL,

  deleted_at DATETIME NULL, -- local hide
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,

  UNIQUE KEY uq_lead (provider_id, external_post_id),
  KEY idx_source (provider_id, source_location),
  KEY idx_author (author_account_id),
  KEY idx_status (status),
  CONSTRAINT fk_lead_provider FOREIGN KEY (provider_id) REFERENCES providers(provider_id),
  CONSTRAINT fk_lead_author FOREIGN KEY (author_account_id) REFERENCES external_accounts(id)
);

-- Profile snapshots (LLM outputs + extracted structured signals)
CREATE TABLE profile_snapshots (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  account_id BIGINT NOT NULL,
  fetched_at DATETIME NOT NULL,

  summary_text MEDIUMTEXT NULL,
  signals_json JSON NULL,
  risk_flags_json JSON NULL,

  model_info_json JSON NULL, -- which models/params used
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,

  KEY idx_snap_account_fetched (account_id, fetched_at),
  CONSTRAINT fk_snap_account FOREIGN KEY (account_id) REFERENCES external_accounts(id)
);

-- Public content items for accounts (posts/comments/images)
CREATE TABLE profile_items (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  account_id BIGINT NOT NULL,

  item_type ENUM('post','comment','image') NOT NULL,
  external_item_id VARCHAR(128) NOT NULL,

  item_created_at DATETIME NULL,
  text_content MEDIUMTEXT NULL,
  attachment_id BIGINT NULL,

  remote_visibility ENUM('visible','deleted_by_author','removed','unknown') NOT NULL DEFAULT 'unknown',
  remote_deleted_at DATETIME NULL,

  deleted_at DATETIME NULL, -- local hide
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,

  UNIQUE KEY uq_item (account_id, item_type, external_item_id),
  KEY idx_item_type (account_id, item_type),
  CONSTRAINT fk_item_account FOREIGN KEY (account_id) REFERENCES external_accounts(id),
  CONSTRAINT fk_item_attachment FOREIGN KEY (attachment_id) REFERENCES attachments(id)
);

-- OAuth/provider credentials (encrypted secrets) - now linked to identities
CREATE TABLE provider_credentials (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  provider_id VARCHAR(32) NOT NULL,
  identity_id BIGINT NULL,  -- NULL for app-level credentials, set for identity-specific
  credential_type VARCHAR(64) NOT NULL, -- e.g. oauth_refresh_token
  secret_encrypted MEDIUMTEXT NOT NULL,
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  rotated_at DATETIME NULL,
  CONSTRAINT fk_cred_provider FOREIGN KEY (provider_id) REFERENCES providers(provider_id),
  CONSTRAINT fk_cred_identity FOREIGN KEY (identity_id) REFERENCES identities(id),
  UNIQUE KEY uq_cred (provider_id, identity_id, credential_type)
);

-- Do-not-contact list (local-only safety)
CREATE TABLE do_not_contact (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  provider_id VARCHAR(32) NOT NULL,
  external_username VARCHAR(128) NOT NULL,
  reason VARCHAR(255) NULL,
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  UNIQUE KEY uq_dnc (provider_id, external_username),
  CONSTRAINT fk_dnc_provider FOREIGN KEY (provider_id) REFERENCES providers(provider_id)
);

-- Append-only audit log
CREATE TABLE audit_log (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  ts DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,

  actor ENUM('user','system','agent') NOT NULL,
  action_type VARCHAR(128) NOT NULL,

  provider_id VARCHAR(32) NULL,
  identity_id BIGINT NULL,  -- Track which identity was used for the action
  entity_type VARCHAR(64) NULL,
  entity_id BIGINT NULL,

  request_json JSON NULL,
  response_json JSON NULL,

  result ENUM('ok','error') NOT NULL,
  error_detail MEDIUMTEXT NULL,

  KEY idx_audit_ts (ts),
  KEY idx_audit_action (action_type),
  KEY idx_audit_provider (provider_id),
  KEY idx_audit_identity (identity_id)
);

-- Job ledger to enforce idempotency/dedupe across Celery retries
CREATE TABLE jobs (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  queue_name VARCHAR(64) NOT NULL,
  job_type VARCHAR(64) NOT NULL,
  payload_json JSON NOT NULL,

  status ENUM('queued','running','retrying','failed','done') NOT NULL DEFAULT 'queued',
  attempts INT NOT NULL DEFAULT 0,
  max_attempts INT NOT NULL DEFAULT 10,
  next_run_at DATETIME NULL,
  last_error MEDIUMTEXT NULL,

  dedupe_key VARCHAR(256) NULL,

  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,

  UNIQUE KEY uq_dedupe (dedupe_key),
  KEY idx_jobs_status (status, next_run_at)
);
