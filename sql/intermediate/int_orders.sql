-- Intermediate: orders placed up to the as-of date with their basket totals. The margin of an
-- order is its amount paid times the basket's margin rate (1 - cost / net); it is null when the
-- lines carry no cost. It is rounded to 4 decimals so sums over orders stay exact.
WITH baskets AS (
    SELECT
        order_id,
        count(*)        AS lines,
        sum(gross)      AS gross,
        sum(net)        AS net,
        sum(cost)       AS cost
    FROM int_order_lines
    GROUP BY order_id
)
SELECT
    o.order_id,
    o.customer_id,
    o.order_ts,
    o.order_date,
    o.total_amount,
    o.status,
    o.channel,
    b.lines,
    b.gross,
    b.net,
    b.cost,
    CASE WHEN b.net > 0 AND b.cost IS NOT NULL
         THEN CAST(round(CAST(o.total_amount AS DOUBLE) * (1.0 - CAST(b.cost AS DOUBLE) / CAST(b.net AS DOUBLE)), 4) AS DECIMAL(18, 4))
    END                                                                 AS margin
FROM stg_orders o
LEFT JOIN baskets b ON o.order_id = b.order_id
WHERE o.order_date <= ${as_of}
