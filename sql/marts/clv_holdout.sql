-- Mart (model input): the calibration / holdout split that validates the CLV model when
-- models.clv.holdout_days > 0 (empty otherwise). For customers who bought by ${calibration_end}
-- (= as-of minus holdout_days): the buy-till-you-die summary as of that date (same definitions
-- as clv_summary) and the purchase days in the holdout window that follows, up to the as-of date.
WITH purchase_days AS (
    SELECT customer_id, order_date
    FROM int_orders
    WHERE status = 'completed'
    GROUP BY customer_id, order_date
),
calibration AS (
    SELECT customer_id, min(order_date) AS first_day, max(order_date) AS last_day, count(*) AS days
    FROM purchase_days
    WHERE order_date <= ${calibration_end}
    GROUP BY customer_id
),
holdout AS (
    SELECT customer_id, count(*) AS purchases
    FROM purchase_days
    WHERE order_date > ${calibration_end}
    GROUP BY customer_id
)
SELECT
    c.customer_id,
    c.days - 1                                                          AS frequency,
    arrow_cast(c.last_day, 'Int32') - arrow_cast(c.first_day, 'Int32')  AS recency_days,
    arrow_cast(${calibration_end}, 'Int32') - arrow_cast(c.first_day, 'Int32') AS age_days,
    coalesce(h.purchases, 0)                                            AS holdout_purchases
FROM calibration c
LEFT JOIN holdout h ON c.customer_id = h.customer_id
WHERE ${holdout_days} > 0
