-- One label rule (issue 16, docs/benchmark.md "Designer labels"), written once as views so that every screen,
-- queue, progress line, export, caption selection, benchmark and `status` reads the same decision. Before this,
-- some readers took "the newest label by anyone" and others the majority, so they disagreed.

-- The events that still count: an undo is its own event pointing at the event it cancels, so both the undo
-- and the event it cancels drop out. The one place that knows how undo is stored.
CREATE VIEW live_label_events AS
SELECT e.*
FROM label_events e
WHERE e.value <> 'undo'
  AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.value = 'undo' AND u.undoes = e.id);

-- Same columns as before (users query it): the latest live event per (item, annotator); a skip is no label.
-- Grouped rather than windowed: a hash aggregate is several times faster here, and filters on item_kind,
-- item_id or annotator still reach the scan.
CREATE OR REPLACE VIEW current_labels AS
SELECT item_kind, item_id, annotator, arg_max(value, id) AS value, arg_max(reasons, id) AS reasons,
       arg_max(note, id) AS note, max(id) AS event_id, arg_max(created_at, id) AS created_at
FROM live_label_events
WHERE value <> 'skip'
GROUP BY item_kind, item_id, annotator;

-- The one label per (item, annotator) that the decision counts. Images and videos: the current label. Triples:
-- an annotator's label on the triple wins over their label on the triple's video, so a video label speaks for
-- every triple of that video unless the annotator judged the triple itself. label_kind says which it was.
CREATE VIEW label_votes AS
SELECT item_kind, item_id, annotator, value, reasons, note, event_id, created_at, item_kind AS label_kind
FROM current_labels
WHERE item_kind IN ('image', 'video')
UNION ALL
SELECT 'triple' AS item_kind, item_id, annotator, value, reasons, note, event_id, created_at, label_kind
FROM (
    SELECT v.*, row_number() OVER (PARTITION BY v.item_id, v.annotator
                                   ORDER BY CASE WHEN v.label_kind = 'triple' THEN 0 ELSE 1 END) AS rn
    FROM (
        SELECT c.item_id, c.annotator, c.value, c.reasons, c.note, c.event_id, c.created_at, 'triple' AS label_kind
        FROM current_labels c WHERE c.item_kind = 'triple'
        UNION ALL
        SELECT t.id AS item_id, c.annotator, c.value, c.reasons, c.note, c.event_id, c.created_at,
               'video' AS label_kind
        FROM current_labels c JOIN triples t ON t.video_id = c.item_id WHERE c.item_kind = 'video'
    ) v
) WHERE rn = 1;

-- The decision per item: the majority of the annotators' votes (good/accept for, bad/reject against); a tie goes
-- to the most recent vote. The label is worded for the item's kind: good/bad for images, accept/reject else.
-- A value outside those four counts for neither side; an item with no vote has no row.
CREATE VIEW resolved_labels AS
SELECT item_kind, item_id,
       CASE WHEN decision = 1 THEN (CASE WHEN item_kind = 'image' THEN 'good' ELSE 'accept' END)
            ELSE (CASE WHEN item_kind = 'image' THEN 'bad' ELSE 'reject' END) END AS label,
       decision, n_pos, n_neg, n_pos + n_neg AS n_annotators, n_pos > 0 AND n_neg > 0 AS conflict,
       annotators, last_event
FROM (
    SELECT item_kind, item_id, n_pos, n_neg, annotators, last_event,
           CASE WHEN n_pos > n_neg THEN 1 WHEN n_neg > n_pos THEN 0
                WHEN newest_is_pos THEN 1 ELSE 0 END AS decision
    FROM (
        SELECT item_kind, item_id,
               count(*) FILTER (WHERE value IN ('good', 'accept')) AS n_pos,
               count(*) FILTER (WHERE value IN ('bad', 'reject')) AS n_neg,
               arg_max(value IN ('good', 'accept'), event_id) AS newest_is_pos,
               list(annotator ORDER BY annotator) AS annotators,
               max(event_id) AS last_event
        FROM label_votes
        WHERE value IN ('good', 'bad', 'accept', 'reject')
        GROUP BY item_kind, item_id
    )
);
