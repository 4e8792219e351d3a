-- Staging: survey answers. Needs a known customer and a parseable time; NPS outside 0-10 and
-- satisfaction outside 1-5 become null and are counted.
WITH typed AS (
    SELECT
        _source_file,
        _row_number,
        _landing_notes,
        nullif(trim(customer_id), '')                                   AS customer_id,
        nullif(trim(survey_ts), '')                                     AS survey_ts_text,
        try_cast(nullif(trim(survey_ts), '') AS TIMESTAMP)              AS survey_ts,
        nullif(trim(nps), '')                                           AS nps_text,
        try_cast(nullif(trim(nps), '') AS BIGINT)                       AS nps,
        nullif(trim(satisfaction), '')                                  AS satisfaction_text,
        try_cast(nullif(trim(satisfaction), '') AS BIGINT)              AS satisfaction
    FROM raw.surveys
)
SELECT
    t._source_file,
    t._row_number,
    CASE
        WHEN t.customer_id IS NULL THEN 'missing_customer_id'
        WHEN t.survey_ts_text IS NULL THEN 'missing_survey_ts'
        WHEN t.survey_ts IS NULL THEN 'invalid_survey_ts'
        WHEN ${has_customers} AND c.customer_id IS NULL THEN 'unknown_customer'
    END                                                                 AS _reject_reason,
    nullif(concat_ws(',',
        t._landing_notes,
        CASE WHEN t.nps_text IS NOT NULL AND (t.nps IS NULL OR t.nps NOT BETWEEN 0 AND 10) THEN 'invalid_nps' END,
        CASE WHEN t.satisfaction_text IS NOT NULL AND (t.satisfaction IS NULL OR t.satisfaction NOT BETWEEN 1 AND 5)
             THEN 'invalid_satisfaction' END
    ), '')                                                              AS _notes,
    t.customer_id,
    t.survey_ts,
    CASE WHEN t.nps BETWEEN 0 AND 10 THEN t.nps END                     AS nps,
    CASE WHEN t.satisfaction BETWEEN 1 AND 5 THEN t.satisfaction END    AS satisfaction
FROM typed t
LEFT JOIN stg_customers c ON t.customer_id = c.customer_id
