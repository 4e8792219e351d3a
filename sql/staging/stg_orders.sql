-- Staging: orders. Types and cleans the orders extract; rejects rows whose meaning is uncertain
-- (missing keys, unparseable or out-of-range timestamps and amounts, unknown customers) and keeps
-- the first valid occurrence of a duplicated order_id (by file, then line), quarantining the
-- others. Duplicates are found by aggregation: only the order_ids that occur more than once in the
-- extract (`repeated`, a hash aggregation over one column) are ranked, not every row.
-- A missing status means completed. Money is DECIMAL(18, 4): exact sums, so every aggregate is
-- the same whatever order the engine adds rows in. Orders after the as-of date are valid here; the
-- intermediate stages leave them out of a period.
WITH keyed AS (
    SELECT r.*, nullif(trim(r.order_id), '') AS order_key
    FROM raw.orders r
),
repeated AS (
    SELECT order_key
    FROM keyed
    WHERE order_key IS NOT NULL
    GROUP BY order_key
    HAVING count(*) > 1
),
typed AS (
    SELECT
        k._source_file,
        k._row_number,
        k._landing_notes,
        k.order_key                                                     AS order_id,
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
        try_cast(nullif(trim(discount_amount), '') AS DECIMAL(18, 4))   AS discount_amount,
        rp.order_key IS NOT NULL                                        AS repeated_key
    FROM keyed k
    LEFT JOIN repeated rp ON k.order_key = rp.order_key
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
-- the later valid occurrences of a repeated order_id; the filter on repeated_key reaches the scan,
-- so only the few rows of repeated keys are typed and checked a second time
duplicates AS (
    SELECT _source_file, _row_number
    FROM (
        SELECT
            _source_file,
            _row_number,
            row_number() OVER (PARTITION BY order_id ORDER BY _source_file, _row_number) AS occurrence
        FROM checked
        WHERE repeated_key AND check_reason IS NULL
    )
    WHERE occurrence > 1
),
ranked AS (
    -- the few duplicates are the join's build side, the rows stream past them
    SELECT c.*, d._row_number IS NOT NULL AS is_duplicate
    FROM duplicates d
    RIGHT JOIN checked c ON c._source_file = d._source_file AND c._row_number = d._row_number
)
SELECT
    _source_file,
    _row_number,
    CASE
        WHEN check_reason IS NOT NULL THEN check_reason
        WHEN is_duplicate THEN 'duplicate_order_id'
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
