-- Compatibility mode per subject, as a history: the latest row of a subject is its mode; a
-- subject without rows has the default (BACKWARD). Keeping every change answers "who relaxed
-- this subject to NONE, and when".
CREATE TABLE IF NOT EXISTS schema_subject_modes
(
    subject LowCardinality(String),
    mode LowCardinality(String),
    changed_by String,
    changed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (subject, changed_at);
