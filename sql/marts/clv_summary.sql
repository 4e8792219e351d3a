-- Mart: the buy-till-you-die customer summary at the as-of date (Fader, Hardie & Lee 2005):
-- purchases are calendar days with at least one completed order (same-day orders merge, their
-- amounts summed); frequency = purchase days after the first; recency_days = last minus first
-- purchase day; age_days = as-of minus first purchase day; monetary_value = mean amount of the
-- repeat purchase days (null without repeats); the same for margin. Input of the CLV model.
WITH purchase_days AS (
    SELECT
        customer_id,
        order_date,
        sum(total_amount)                                               AS amount,
        sum(margin)                                                     AS margin
    FROM int_orders
    WHERE status = 'completed'
    GROUP BY customer_id, order_date
),
firsts AS (
    SELECT customer_id, min(order_date) AS first_day FROM purchase_days GROUP BY customer_id
)
SELECT
    d.customer_id,
    count(*) - 1                                                        AS frequency,
    arrow_cast(max(d.order_date), 'Int32') - arrow_cast(f.first_day, 'Int32') AS recency_days,
    arrow_cast(${as_of}, 'Int32') - arrow_cast(f.first_day, 'Int32') AS age_days,
    CAST(sum(CASE WHEN d.order_date > f.first_day THEN d.amount END) AS DOUBLE) / nullif(count(*) - 1, 0) AS monetary_value,
    CAST(sum(CASE WHEN d.order_date > f.first_day THEN d.margin END) AS DOUBLE) / nullif(count(*) - 1, 0) AS monetary_margin,
    sum(d.amount)                                                       AS total_amount,
    sum(d.margin)                                                       AS total_margin
FROM purchase_days d
JOIN firsts f ON d.customer_id = f.customer_id
GROUP BY d.customer_id, f.first_day
