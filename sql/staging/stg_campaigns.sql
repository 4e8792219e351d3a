-- Staging: campaigns. One row per campaign_id (first occurrence wins); cost must parse and be
-- non-negative, otherwise it is null and counted.
WITH typed AS (
    SELECT
        _source_file,
        _row_number,
        nullif(trim(campaign_id), '')                                   AS campaign_id,
        nullif(trim(name), '')                                          AS name,
        nullif(lower(trim(channel)), '')                                AS channel,
        try_cast(nullif(trim(start_date), '') AS DATE)                  AS start_date,
        try_cast(nullif(trim(end_date), '') AS DATE)                    AS end_date,
        nullif(trim(cost), '')                                          AS cost_text,
        try_cast(nullif(trim(cost), '') AS DECIMAL(18, 4))              AS cost
    FROM raw.campaigns
),
ranked AS (
    SELECT *, row_number() OVER (PARTITION BY campaign_id ORDER BY _source_file, _row_number) AS occurrence
    FROM typed
)
SELECT
    _source_file,
    _row_number,
    CASE
        WHEN campaign_id IS NULL THEN 'missing_campaign_id'
        WHEN occurrence > 1 THEN 'duplicate_campaign_id'
    END                                                                 AS _reject_reason,
    CASE WHEN cost_text IS NOT NULL AND (cost IS NULL OR cost < 0) THEN 'invalid_cost' END AS _notes,
    campaign_id,
    name,
    channel,
    start_date,
    end_date,
    CASE WHEN cost >= 0 THEN cost END                                   AS cost
FROM ranked
