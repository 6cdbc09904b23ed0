-- Image curation (issue #5): perceptual hashes for near-duplicate grouping (computed once per image
-- content; the grouping itself is stored in images.dup_group).
CREATE TABLE image_hashes (
    image_id    BIGINT PRIMARY KEY,
    sha256      VARCHAR NOT NULL,
    phash       UBIGINT NOT NULL,          -- 64-bit DCT perceptual hash (grey structure)
    colour      FLOAT[] NOT NULL,          -- 4x4 grid of mean CIELAB colours (48 values; pHash ignores colour)
    computed_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
