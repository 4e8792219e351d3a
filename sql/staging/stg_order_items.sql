-- Staging: order lines. A line needs an order and a product; quantity and prices must parse
-- (an absent quantity column means 1, an empty quantity cell is invalid). Lines of orders that
-- were not loaded are quarantined as unknown_order; a repeated (order_id, line_no) keeps the
-- first occurrence. `discount` is the amount taken off the line.
WITH typed AS (
    SELECT
        _source_file,
        _row_number,
        nullif(trim(order_id), '')                                      AS order_id,
        try_cast(nullif(trim(line_no), '') AS BIGINT)                   AS line_no,
        nullif(trim(product_id), '')                                    AS product_id,
        quantity                                                        AS quantity_text,
        try_cast(trim(quantity) AS BIGINT)                              AS quantity,
        nullif(trim(unit_price), '')                                    AS unit_price_text,
        try_cast(nullif(trim(unit_price), '') AS DECIMAL(18, 4))        AS unit_price,
        try_cast(nullif(trim(discount), '') AS DECIMAL(18, 4))          AS discount,
        try_cast(nullif(trim(unit_cost), '') AS DECIMAL(18, 4))         AS unit_cost
    FROM raw.order_items
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
ranked AS (
    SELECT
        *,
        row_number() OVER (
            PARTITION BY order_id, coalesce(line_no, -_row_number), check_reason IS NULL
            ORDER BY _source_file, _row_number
        ) AS occurrence
    FROM checked
)
SELECT
    _source_file,
    _row_number,
    CASE
        WHEN check_reason IS NOT NULL THEN check_reason
        WHEN occurrence > 1 THEN 'duplicate_order_line'
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
