-- Staging: campaign contacts. Needs a known campaign, a known customer and a parseable contact
-- time; an unparseable response time is nulled and counted.
WITH typed AS (
    SELECT
        _source_file,
        _row_number,
        _landing_notes,
        nullif(trim(campaign_id), '')                                   AS campaign_id,
        nullif(trim(customer_id), '')                                   AS customer_id,
        nullif(trim(contacted_ts), '')                                  AS contacted_ts_text,
        try_cast(nullif(trim(contacted_ts), '') AS TIMESTAMP)           AS contacted_ts,
        nullif(trim(responded_ts), '')                                  AS responded_ts_text,
        try_cast(nullif(trim(responded_ts), '') AS TIMESTAMP)           AS responded_ts,
        nullif(trim(converted_order_id), '')                            AS converted_order_id
    FROM raw.campaign_contacts
)
SELECT
    t._source_file,
    t._row_number,
    CASE
        WHEN t.campaign_id IS NULL THEN 'missing_campaign_id'
        WHEN t.customer_id IS NULL THEN 'missing_customer_id'
        WHEN t.contacted_ts_text IS NULL THEN 'missing_contacted_ts'
        WHEN t.contacted_ts IS NULL THEN 'invalid_contacted_ts'
        WHEN k.campaign_id IS NULL THEN 'unknown_campaign'
        WHEN ${has_customers} AND c.customer_id IS NULL THEN 'unknown_customer'
    END                                                                 AS _reject_reason,
    nullif(concat_ws(',',
        t._landing_notes,
        CASE WHEN t.responded_ts_text IS NOT NULL AND t.responded_ts IS NULL
             THEN 'invalid_responded_ts' END
    ), '')                                                              AS _notes,
    t.campaign_id,
    t.customer_id,
    t.contacted_ts,
    t.responded_ts,
    t.converted_order_id
FROM typed t
LEFT JOIN stg_campaigns k ON t.campaign_id = k.campaign_id
LEFT JOIN stg_customers c ON t.customer_id = c.customer_id
