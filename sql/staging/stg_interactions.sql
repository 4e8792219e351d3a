-- Staging: service interactions. Needs a customer and a parseable timestamp; types outside
-- inquiry / complaint / suggestion / praise / other become 'other' (counted); satisfaction
-- outside 1-5 becomes null (counted).
WITH typed AS (
    SELECT
        _source_file,
        _row_number,
        _landing_notes,
        nullif(trim(interaction_id), '')                                AS interaction_id,
        nullif(trim(customer_id), '')                                   AS customer_id,
        nullif(trim(ts), '')                                            AS ts_text,
        try_cast(nullif(trim(ts), '') AS TIMESTAMP)                     AS ts,
        nullif(lower(trim(channel)), '')                                AS channel,
        nullif(lower(trim(type)), '')                                   AS type_text,
        nullif(trim(satisfaction), '')                                  AS satisfaction_text,
        try_cast(nullif(trim(satisfaction), '') AS BIGINT)              AS satisfaction
    FROM raw.interactions
)
SELECT
    t._source_file,
    t._row_number,
    CASE
        WHEN t.customer_id IS NULL THEN 'missing_customer_id'
        WHEN t.ts_text IS NULL THEN 'missing_ts'
        WHEN t.ts IS NULL THEN 'invalid_ts'
        WHEN ${has_customers} AND c.customer_id IS NULL THEN 'unknown_customer'
    END                                                                 AS _reject_reason,
    nullif(concat_ws(',',
        t._landing_notes,
        CASE WHEN t.type_text IS NOT NULL
              AND t.type_text NOT IN ('inquiry', 'complaint', 'suggestion', 'praise', 'other')
             THEN 'unknown_interaction_type' END,
        CASE WHEN t.satisfaction_text IS NOT NULL AND (t.satisfaction IS NULL OR t.satisfaction NOT BETWEEN 1 AND 5)
             THEN 'invalid_satisfaction' END
    ), '')                                                              AS _notes,
    t.interaction_id,
    t.customer_id,
    t.ts,
    CAST(t.ts AS DATE)                                                  AS interaction_date,
    t.channel,
    CASE WHEN t.type_text IN ('inquiry', 'complaint', 'suggestion', 'praise') THEN t.type_text
         WHEN t.type_text IS NULL THEN NULL
         ELSE 'other' END                                               AS type,
    CASE WHEN t.satisfaction BETWEEN 1 AND 5 THEN t.satisfaction END    AS satisfaction
FROM typed t
LEFT JOIN stg_customers c ON t.customer_id = c.customer_id
