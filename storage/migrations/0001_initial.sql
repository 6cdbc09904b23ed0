-- Initial schema. Identifiers come from sequences; rows that other rows point at are never updated
-- in place except for plain attribute columns (DuckDB cannot update columns that carry an index).

CREATE SEQUENCE seq_domains START 1;
CREATE SEQUENCE seq_categories START 1;
CREATE SEQUENCE seq_images START 1;
CREATE SEQUENCE seq_prompts START 1;
CREATE SEQUENCE seq_videos START 1;
CREATE SEQUENCE seq_triples START 1;
CREATE SEQUENCE seq_label_events START 1;
CREATE SEQUENCE seq_metric_results START 1;
CREATE SEQUENCE seq_classifier_runs START 1;
CREATE SEQUENCE seq_exports START 1;
CREATE SEQUENCE seq_media_roots START 1;

CREATE TABLE domains (
    id      INTEGER PRIMARY KEY DEFAULT nextval('seq_domains'),
    name    VARCHAR NOT NULL UNIQUE,
    position INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE categories (
    id        INTEGER PRIMARY KEY DEFAULT nextval('seq_categories'),
    domain_id INTEGER NOT NULL,
    name      VARCHAR NOT NULL,
    position  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (domain_id, name)
);

-- Folders that media were ingested from; the app serves files only from these and the workspace.
CREATE TABLE media_roots (
    id       INTEGER PRIMARY KEY DEFAULT nextval('seq_media_roots'),
    path     VARCHAR NOT NULL UNIQUE,
    added_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE images (
    id          BIGINT PRIMARY KEY DEFAULT nextval('seq_images'),
    sha256      VARCHAR NOT NULL UNIQUE,
    path        VARCHAR NOT NULL,
    bytes       BIGINT NOT NULL,
    format      VARCHAR NOT NULL,
    width       INTEGER NOT NULL,
    height      INTEGER NOT NULL,
    mode        VARCHAR,
    has_alpha   BOOLEAN NOT NULL DEFAULT false,
    category_id INTEGER,
    product     VARCHAR,
    source      VARCHAR,
    dup_group   BIGINT,
    added_at    TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE prompts (
    id         BIGINT PRIMARY KEY DEFAULT nextval('seq_prompts'),
    sha256     VARCHAR NOT NULL UNIQUE,   -- of the UTF-8 text
    text       VARCHAR NOT NULL,
    image_id   BIGINT,                    -- the image it was written for, when known
    source     VARCHAR,                   -- 'manifest', 'mllm:<model>', 'user'
    template   VARCHAR,
    added_at   TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE videos (
    id              BIGINT PRIMARY KEY DEFAULT nextval('seq_videos'),
    sha256          VARCHAR NOT NULL UNIQUE,
    path            VARCHAR NOT NULL,
    bytes           BIGINT NOT NULL,
    container       VARCHAR,
    codec           VARCHAR,
    fps             DOUBLE,
    frame_count     INTEGER,
    width           INTEGER,
    height          INTEGER,
    duration        DOUBLE,
    model           VARCHAR,            -- generator model, when known
    source_image_id BIGINT,
    prompt_id       BIGINT,
    caption         VARCHAR,
    added_at        TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- A (reference image, prompt, video, model) case. One video may appear in several triples.
CREATE TABLE triples (
    id            BIGINT PRIMARY KEY DEFAULT nextval('seq_triples'),
    image_id      BIGINT,
    prompt_id     BIGINT,
    video_id      BIGINT NOT NULL,
    model         VARCHAR NOT NULL DEFAULT '',
    benchmark_set VARCHAR NOT NULL DEFAULT '',
    category_id   INTEGER,
    product       VARCHAR,
    added_at      TIMESTAMP NOT NULL DEFAULT current_timestamp,
    UNIQUE (image_id, prompt_id, video_id, model, benchmark_set)
);

-- Append-only. An undo is its own event pointing at the event it cancels.
CREATE TABLE label_events (
    id         BIGINT PRIMARY KEY DEFAULT nextval('seq_label_events'),
    item_kind  VARCHAR NOT NULL,        -- 'image' | 'video' | 'triple' | 'pair'
    item_id    BIGINT NOT NULL,
    value      VARCHAR NOT NULL,        -- good|bad|accept|reject|skip|undo|<pair choice>
    reasons    VARCHAR[] NOT NULL DEFAULT [],
    note       VARCHAR,
    annotator  VARCHAR NOT NULL,
    session    VARCHAR,
    undoes     BIGINT,                  -- for value = 'undo'
    payload    JSON,                    -- extra structured data (pair judgements)
    client_key VARCHAR UNIQUE,          -- idempotency key from the client: a retried request adds nothing
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE metric_results (
    id             BIGINT PRIMARY KEY DEFAULT nextval('seq_metric_results'),
    metric         VARCHAR NOT NULL,
    metric_version VARCHAR NOT NULL,
    params_hash    VARCHAR NOT NULL,
    video_id       BIGINT NOT NULL,
    triple_id      BIGINT NOT NULL DEFAULT 0,   -- 0 for video-only metrics (MotionX, AesScore)
    value          DOUBLE,                      -- NULL unless status = 'ok'
    status         VARCHAR NOT NULL,            -- ok | n/a | unavailable | error
    reason         VARCHAR,
    backend        VARCHAR,
    trace          JSON,
    seconds        DOUBLE,
    computed_at    TIMESTAMP NOT NULL DEFAULT current_timestamp,
    UNIQUE (metric, metric_version, params_hash, video_id, triple_id)
);

CREATE TABLE embeddings (
    item_sha256 VARCHAR NOT NULL,
    model_id    VARCHAR NOT NULL,
    dim         INTEGER NOT NULL,
    vector      FLOAT[] NOT NULL,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (item_sha256, model_id)
);

CREATE TABLE filter_results (
    image_id    BIGINT NOT NULL,
    filter      VARCHAR NOT NULL,
    params_hash VARCHAR NOT NULL,
    value       DOUBLE,
    passed      BOOLEAN,
    reason      VARCHAR,
    details     JSON,
    computed_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (image_id, filter, params_hash)
);

CREATE TABLE classifier_runs (
    id          BIGINT PRIMARY KEY DEFAULT nextval('seq_classifier_runs'),
    version     VARCHAR NOT NULL,
    n_labels    INTEGER NOT NULL,
    label_hash  VARCHAR NOT NULL,
    label_counts JSON,
    features    VARCHAR NOT NULL,
    estimator   VARCHAR,
    threshold   DOUBLE,
    cv_metrics  JSON,
    model_path  VARCHAR,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE predictions (
    run_id   BIGINT NOT NULL,
    image_id BIGINT NOT NULL,
    score    DOUBLE NOT NULL,
    PRIMARY KEY (run_id, image_id)
);

CREATE TABLE exports (
    id         BIGINT PRIMARY KEY DEFAULT nextval('seq_exports'),
    out_dir    VARCHAR NOT NULL,
    params     JSON,
    counts     JSON,
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- The current label of each item per annotator: its latest event that is a label and not undone.
CREATE VIEW current_labels AS
SELECT item_kind, item_id, annotator, value, reasons, note, id AS event_id, created_at
FROM (
    SELECT e.*, row_number() OVER (PARTITION BY e.item_kind, e.item_id, e.annotator
                                   ORDER BY e.id DESC) AS rn
    FROM label_events e
    WHERE e.value NOT IN ('undo', 'skip')
      AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.value = 'undo' AND u.undoes = e.id)
) WHERE rn = 1;
