-- Caption provenance (the `captions` command): which model and template wrote each video's caption. Older
-- versions created this table on first use, so it may already exist.
CREATE TABLE IF NOT EXISTS video_captions (
    video_id   BIGINT PRIMARY KEY,
    caption    VARCHAR NOT NULL,
    model      VARCHAR NOT NULL,
    template   VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
