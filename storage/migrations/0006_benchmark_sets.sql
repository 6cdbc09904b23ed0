-- Benchmark-set definitions (issue #7). A set's cases are the triples whose benchmark_set is the name;
-- this table keeps what triples cannot hold: the case list as imported, the model-type map and notes.
CREATE TABLE benchmark_sets (
    name        VARCHAR PRIMARY KEY,
    definition  JSON NOT NULL,
    source_path VARCHAR,
    imported_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
