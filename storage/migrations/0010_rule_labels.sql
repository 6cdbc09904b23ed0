-- Labels made by a rule (annotator 'rule:<calibration id>', written by `calibrate --apply`) rank below every
-- human label, of any age: a rule only ever stands in for the designers where none of them has spoken, so an item
-- that any person has a vote on is decided by the people's votes alone (majority, a tie to the most recent vote,
-- as in 0007). An item with rule votes only is decided by the newest of them: rules are not a crowd, and a newer
-- calibration supersedes an older one rather than being outvoted by it. `by_rule` says which kind decided.
-- Only resolved_labels changes; current_labels and label_votes still hold every annotator, rules included.
CREATE OR REPLACE VIEW resolved_labels AS
SELECT item_kind, item_id,
       CASE WHEN decision = 1 THEN (CASE WHEN item_kind = 'image' THEN 'good' ELSE 'accept' END)
            ELSE (CASE WHEN item_kind = 'image' THEN 'bad' ELSE 'reject' END) END AS label,
       decision, n_pos, n_neg, n_pos + n_neg AS n_annotators, n_pos > 0 AND n_neg > 0 AS conflict,
       annotators, last_event, by_rule
FROM (
    SELECT item_kind, item_id, by_rule, n_pos, n_neg, annotators, last_event,
           CASE WHEN n_pos > n_neg THEN 1 WHEN n_neg > n_pos THEN 0
                WHEN newest_is_pos THEN 1 ELSE 0 END AS decision
    FROM (
        SELECT item_kind, item_id, n_human = 0 AS by_rule,
               CASE WHEN n_human > 0 THEN h_pos ELSE CAST(r_newest_pos AS BIGINT) END AS n_pos,
               CASE WHEN n_human > 0 THEN h_neg ELSE 1 - CAST(r_newest_pos AS BIGINT) END AS n_neg,
               CASE WHEN n_human > 0 THEN h_newest_pos ELSE r_newest_pos END AS newest_is_pos,
               CASE WHEN n_human > 0 THEN h_annotators ELSE [r_newest] END AS annotators,
               CASE WHEN n_human > 0 THEN h_last ELSE r_last END AS last_event
        FROM (
            -- grouped, not windowed, like 0007: filters on item_kind / item_id still reach the scan
            SELECT item_kind, item_id,
                   count(*) FILTER (WHERE NOT is_rule) AS n_human,
                   count(*) FILTER (WHERE NOT is_rule AND is_pos) AS h_pos,
                   count(*) FILTER (WHERE NOT is_rule AND NOT is_pos) AS h_neg,
                   arg_max(is_pos, event_id) FILTER (WHERE NOT is_rule) AS h_newest_pos,
                   list(annotator ORDER BY annotator) FILTER (WHERE NOT is_rule) AS h_annotators,
                   max(event_id) FILTER (WHERE NOT is_rule) AS h_last,
                   arg_max(is_pos, event_id) FILTER (WHERE is_rule) AS r_newest_pos,
                   arg_max(annotator, event_id) FILTER (WHERE is_rule) AS r_newest,
                   max(event_id) FILTER (WHERE is_rule) AS r_last
            FROM (
                SELECT item_kind, item_id, annotator, event_id, value IN ('good', 'accept') AS is_pos,
                       starts_with(annotator, 'rule:') AS is_rule
                FROM label_votes
                WHERE value IN ('good', 'bad', 'accept', 'reject')
            )
            GROUP BY item_kind, item_id
        )
    )
);
