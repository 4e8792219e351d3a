-- Intermediate: purchase history per customer up to the as-of date. Only completed orders are
-- purchases; cancelled and returned orders are counted separately.
SELECT
    customer_id,
    min(CASE WHEN status = 'completed' THEN order_date END)            AS first_order_date,
    max(CASE WHEN status = 'completed' THEN order_date END)            AS last_order_date,
    sum(CASE WHEN status = 'completed' THEN 1 ELSE 0 END)              AS orders,
    count(DISTINCT CASE WHEN status = 'completed' THEN order_date END) AS purchase_days,
    sum(CASE WHEN status = 'completed' THEN total_amount END)          AS revenue,
    sum(CASE WHEN status = 'completed' THEN margin END)                AS margin,
    sum(CASE WHEN status = 'completed' AND order_date >= ${period_start}
             THEN total_amount END)                                     AS period_revenue,
    sum(CASE WHEN status = 'completed' AND order_date >= ${period_start}
             THEN 1 ELSE 0 END)                                         AS period_orders,
    sum(CASE WHEN status = 'completed'
              AND order_date BETWEEN ${previous_period_start} AND ${previous_period_end}
             THEN 1 ELSE 0 END)                                         AS previous_period_orders,
    max(CASE WHEN status = 'completed' AND order_date < ${period_start}
             THEN order_date END)                                       AS last_order_before_period,
    sum(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END)              AS cancelled_orders,
    sum(CASE WHEN status = 'returned' THEN 1 ELSE 0 END)               AS returned_orders,
    sum(CASE WHEN status = 'completed' AND channel = 'online' THEN 1 ELSE 0 END) AS online_orders
FROM int_orders
GROUP BY customer_id
