-- Staging: order lines. A line needs an order and a product; quantity and prices must parse
-- (an absent quantity column means 1, an empty quantity cell is invalid). Lines of orders that
-- were not loaded are quarantined as unknown_order; a repeated (order_id, line_no) keeps the
-- first valid occurrence (by file, then line); lines without a line number are never duplicates.
-- Duplicates are found by aggregation: only the (order_id, line_no) pairs that occur more than once
-- in the extract (`repeated`) are ranked, not every row. `discount` is the amount taken off the line.
WITH keyed AS (
    SELECT
        r.*,
        nullif(trim(r.order_id), '')                                    AS order_key,
        try_cast(nullif(trim(r.line_no), '') AS BIGINT)                 AS line_key
    FROM raw.order_items r
),
repeated AS (
    SELECT order_key, line_key
    FROM keyed
    WHERE order_key IS NOT NULL AND line_key IS NOT NULL
    GROUP BY order_key, line_key
    HAVING count(*) > 1
),
typed AS (
    SELECT
        k._source_file,
        k._row_number,
        k.order_key                                                     AS order_id,
        k.line_key                                                      AS line_no,
        nullif(trim(product_id), '')                                    AS product_id,
        quantity                                                        AS quantity_text,
        try_cast(trim(quantity) AS BIGINT)                              AS quantity,
        nullif(trim(unit_price), '')                                    AS unit_price_text,
        try_cast(nullif(trim(unit_price), '') AS DECIMAL(18, 4))        AS unit_price,
        try_cast(nullif(trim(discount), '') AS DECIMAL(18, 4))          AS discount,
        try_cast(nullif(trim(unit_cost), '') AS DECIMAL(18, 4))         AS unit_cost,
        rp.order_key IS NOT NULL                                        AS repeated_key
    FROM keyed k
    LEFT JOIN repeated rp ON k.order_key = rp.order_key AND k.line_key = rp.line_key
),
checked AS (
    SELECT
        t.*,
        CASE
            WHEN t.order_id IS NULL THEN 'missing_order_id'
            WHEN t.product_id IS NULL THEN 'missing_product_id'
            WHEN t.quantity_text IS NOT NULL AND (t.quantity IS NULL OR t.quantity <= 0) THEN 'invalid_quantity'
            WHEN t.unit_price_text IS NOT NULL AND (t.unit_price IS NULL OR t.unit_price < 0) THEN 'invalid_unit_price'
            WHEN o.order_id IS NULL THEN 'unknown_order'
        END AS check_reason
    FROM typed t
    LEFT JOIN (SELECT DISTINCT order_id FROM stg_orders) o ON t.order_id = o.order_id
),
-- the later valid occurrences of a repeated line; the filter on repeated_key reaches the scan, so
-- only the few rows of repeated keys are typed and checked a second time
duplicates AS (
    SELECT _source_file, _row_number
    FROM (
        SELECT
            _source_file,
            _row_number,
            row_number() OVER (PARTITION BY order_id, line_no ORDER BY _source_file, _row_number) AS occurrence
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
        WHEN is_duplicate THEN 'duplicate_order_line'
    END                                                                 AS _reject_reason,
    CAST(NULL AS VARCHAR)                                               AS _notes,
    order_id,
    line_no,
    product_id,
    coalesce(quantity, 1)                                               AS quantity,
    unit_price,
    coalesce(discount, CAST(0 AS DECIMAL(18, 4)))                                  AS discount,
    unit_cost
FROM ranked
