-- Staging: orders. Types and cleans the orders extract; rejects rows whose meaning is uncertain
-- (missing keys, unparseable or out-of-range timestamps and amounts, unknown customers) and keeps
-- the first occurrence of a duplicated order_id (by file, then line), quarantining the others.
-- A missing status means completed. Money is DECIMAL(18, 4): exact sums, so every aggregate is
-- the same whatever order the engine adds rows in. Orders after the as-of date are valid here; the
-- intermediate stages leave them out of a period.
WITH typed AS (
    SELECT
        _source_file,
        _row_number,
        _landing_notes,
        nullif(trim(order_id), '')                                      AS order_id,
        nullif(trim(customer_id), '')                                   AS customer_id,
        nullif(trim(order_ts), '')                                      AS order_ts_text,
        try_cast(nullif(trim(order_ts), '') AS TIMESTAMP)               AS order_ts,
        nullif(trim(total_amount), '')                                  AS total_amount_text,
        try_cast(nullif(trim(total_amount), '') AS DECIMAL(18, 4))      AS total_amount,
        status                                                          AS status_raw,
        coalesce(nullif(lower(trim(status)), ''), 'completed')          AS status,
        channel                                                         AS channel_raw,
        nullif(lower(trim(channel)), '')                                AS channel,
        nullif(trim(store_id), '')                                      AS store_id,
        nullif(upper(trim(currency)), '')                               AS currency,
        try_cast(nullif(trim(discount_amount), '') AS DECIMAL(18, 4))   AS discount_amount
    FROM raw.orders
),
checked AS (
    SELECT
        t.*,
        CASE
            WHEN t.order_id IS NULL THEN 'missing_order_id'
            WHEN t.customer_id IS NULL THEN 'missing_customer_id'
            WHEN t.order_ts_text IS NULL THEN 'missing_order_ts'
            WHEN t.order_ts IS NULL THEN 'invalid_order_ts'
            WHEN t.order_ts < CAST(${min_valid_date} AS TIMESTAMP) THEN 'order_ts_out_of_range'
            WHEN t.total_amount_text IS NULL THEN 'missing_total_amount'
            WHEN t.total_amount IS NULL THEN 'invalid_total_amount'
            WHEN t.total_amount <= 0 THEN 'non_positive_amount'
            WHEN t.total_amount > ${max_order_amount} THEN 'amount_out_of_range'
            WHEN ${has_customers} AND c.customer_id IS NULL THEN 'unknown_customer'
        END AS check_reason
    FROM typed t
    LEFT JOIN stg_customers c ON t.customer_id = c.customer_id
),
ranked AS (
    SELECT
        *,
        row_number() OVER (
            PARTITION BY order_id, check_reason IS NULL
            ORDER BY _source_file, _row_number
        ) AS occurrence
    FROM checked
)
SELECT
    _source_file,
    _row_number,
    CASE
        WHEN check_reason IS NOT NULL THEN check_reason
        WHEN occurrence > 1 THEN 'duplicate_order_id'
    END                                                                 AS _reject_reason,
    nullif(concat_ws(',',
        _landing_notes,
        CASE WHEN channel_raw <> channel AND trim(channel_raw) <> '' THEN 'channel_normalised' END,
        CASE WHEN status NOT IN ('completed', 'cancelled', 'returned') THEN 'unknown_status' END
    ), '')                                                              AS _notes,
    order_id,
    customer_id,
    order_ts,
    CAST(order_ts AS DATE)                                              AS order_date,
    total_amount,
    status,
    channel,
    store_id,
    currency,
    discount_amount
FROM ranked
