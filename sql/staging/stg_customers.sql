-- Staging: customers. Types and cleans the customers extract. One row per customer_id: the
-- latest updated_at wins (ties: the row later in the extract); superseded rows are quarantined.
-- Invalid emails are nulled (the customer stays) and counted; categorical values are trimmed and
-- lower-cased, gender is mapped to F / M / other, and every changed cell is counted.
-- Superseded rows are found by aggregation: only the customer_ids that occur more than once in the
-- extract (`repeated`) are ranked, not every row.
WITH keyed AS (
    SELECT r.*, nullif(trim(r.customer_id), '') AS customer_key
    FROM raw.customers r
),
repeated AS (
    SELECT customer_key
    FROM keyed
    WHERE customer_key IS NOT NULL
    GROUP BY customer_key
    HAVING count(*) > 1
),
typed AS (
    SELECT
        k._source_file,
        k._row_number,
        k._landing_notes,
        k.customer_key                                                  AS customer_id,
        nullif(trim(email), '')                                         AS email_text,
        gender                                                          AS gender_raw,
        nullif(lower(trim(gender)), '')                                 AS gender_text,
        try_cast(nullif(trim(birth_date), '') AS DATE)                  AS birth_date,
        nullif(trim(birth_date), '')                                    AS birth_date_text,
        nullif(lower(trim(occupation)), '')                             AS occupation,
        try_cast(nullif(trim(annual_income), '') AS DOUBLE)             AS annual_income,
        nullif(lower(trim(education)), '')                              AS education,
        nullif(trim(country), '')                                       AS country,
        region                                                          AS region_raw,
        nullif(lower(trim(region)), '')                                 AS region,
        nullif(trim(city), '')                                          AS city,
        try_cast(nullif(trim(signup_date), '') AS DATE)                 AS signup_date,
        nullif(trim(signup_date), '')                                   AS signup_date_text,
        nullif(lower(trim(acquisition_channel)), '')                    AS acquisition_channel,
        nullif(lower(trim(membership_tier)), '')                        AS membership_tier,
        try_cast(nullif(trim(updated_at), '') AS TIMESTAMP)             AS updated_at,
        rp.customer_key IS NOT NULL                                     AS repeated_key
    FROM keyed k
    LEFT JOIN repeated rp ON k.customer_key = rp.customer_key
),
-- the older versions of a repeated customer_id; the filter on repeated_key reaches the scan, so
-- only the rows of repeated keys are typed a second time
superseded AS (
    SELECT _source_file, _row_number
    FROM (
        SELECT
            _source_file,
            _row_number,
            row_number() OVER (
                PARTITION BY customer_id
                ORDER BY updated_at DESC NULLS LAST, _source_file DESC, _row_number DESC
            ) AS version_rank
        FROM typed
        WHERE repeated_key
    )
    WHERE version_rank > 1
),
ranked AS (
    -- the few superseded are the join's build side, the rows stream past them
    SELECT t.*, s._row_number IS NOT NULL AS is_superseded
    FROM superseded s
    RIGHT JOIN typed t ON t._source_file = s._source_file AND t._row_number = s._row_number
)
SELECT
    _source_file,
    _row_number,
    CASE
        WHEN customer_id IS NULL THEN 'missing_customer_id'
        WHEN is_superseded THEN 'duplicate_customer'
    END                                                                 AS _reject_reason,
    nullif(concat_ws(',',
        _landing_notes,
        CASE WHEN email_text IS NOT NULL
              AND NOT regexp_like(email_text, '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$')
             THEN 'invalid_email' END,
        CASE WHEN gender_raw NOT IN ('F', 'M', 'other') AND trim(gender_raw) <> '' THEN 'gender_normalised' END,
        CASE WHEN (region_raw IS DISTINCT FROM region) AND trim(region_raw) <> '' THEN 'region_normalised' END,
        CASE WHEN birth_date IS NULL AND birth_date_text IS NOT NULL THEN 'invalid_birth_date' END,
        CASE WHEN signup_date IS NULL AND signup_date_text IS NOT NULL THEN 'invalid_signup_date' END
    ), '')                                                              AS _notes,
    customer_id,
    CASE WHEN regexp_like(email_text, '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$')
         THEN lower(email_text) END                                     AS email,
    CASE
        WHEN gender_text IN ('f', 'female', 'w', 'woman') THEN 'F'
        WHEN gender_text IN ('m', 'male', 'man') THEN 'M'
        WHEN gender_text IS NULL THEN NULL
        ELSE 'other'
    END                                                                 AS gender,
    birth_date,
    occupation,
    annual_income,
    education,
    country,
    region,
    city,
    signup_date,
    acquisition_channel,
    membership_tier,
    updated_at
FROM ranked
