-- The dashboard questions in Trino SQL, over the tables of tables.sql (USE hive.crm first).
-- Athena (engine v3) runs them unchanged in database crm. Periods are literals: edit them.

-- 1. Segment trend over periods: customers, shares and average CLV per rfm8 segment in every
--    period, with the change in customers versus the period before.
SELECT
    period,
    segment,
    customers,
    customers - lag(customers) OVER (PARTITION BY segment ORDER BY period) AS customers_change,
    round(customer_share, 4)                                               AS customer_share,
    round(revenue_share, 4)                                                AS revenue_share,
    round(avg_clv, 2)                                                      AS avg_clv,
    round(retention_rate, 4)                                               AS retention_rate
FROM segment_summary
WHERE scheme = 'rfm8'
ORDER BY segment, period;

-- 2. Target segments this period, with their rank, size, value and marketing mix.
SELECT
    p.scheme,
    p.target_rank,
    p.segment,
    p.customers,
    round(s.revenue_share, 4)  AS revenue_share,
    round(s.avg_clv, 2)        AS avg_clv,
    round(p.attractiveness, 3) AS attractiveness,
    p.product_strategy,
    p.price_strategy,
    p.channel_strategy,
    p.promotion_strategy,
    p.action
FROM positioning p
LEFT JOIN segment_summary s
    ON s.period = p.period AND s.scheme = p.scheme AND s.segment = p.segment
WHERE p.is_target
  AND p.period = '2024-12'
ORDER BY p.scheme, p.target_rank, p.segment;

-- 3. Customers who moved from "important value" (rfm8_code 111) to "important retain" (011)
--    between two periods, largest CLV first: the loyal customers to call back first.
SELECT
    a.period            AS from_period,
    b.period            AS to_period,
    b.customer_id,
    a.rfm_score         AS rfm_score_before,
    b.rfm_score         AS rfm_score_after,
    f.last_order_date,
    f.recency_days,
    round(v.clv, 2)     AS clv,
    round(v.p_alive, 3) AS p_alive,
    round(v.historical_revenue, 2) AS historical_revenue
FROM customer_segments a
JOIN customer_segments b
    ON b.customer_id = a.customer_id AND b.period = '2024-12'
LEFT JOIN customer_value v ON v.period = b.period AND v.customer_id = b.customer_id
LEFT JOIN customer_features f ON f.period = b.period AND f.customer_id = b.customer_id
WHERE a.period = '2024-11'
  AND a.rfm8_code = '111'
  AND b.rfm8_code = '011'
ORDER BY v.clv DESC NULLS LAST, b.customer_id;
