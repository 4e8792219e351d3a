-- Customers who moved from "important value" (RFM eight classes, code 111: recent, frequent,
-- high spend) to "important retain" (011: no longer recent) between two periods: the loyal
-- customers to call back first. Periods: SET VARIABLE from_period / to_period; default the two
-- latest published periods. Largest CLV first.
WITH periods AS (
    SELECT
        coalesce(getvariable('to_period'), (SELECT max(period) FROM customer_segments)) AS to_period
),
bounds AS (
    SELECT
        coalesce(getvariable('from_period'),
                 (SELECT max(period) FROM customer_segments, periods
                  WHERE customer_segments.period < periods.to_period)) AS from_period,
        to_period
    FROM periods
)
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
FROM bounds
JOIN customer_segments a ON a.period = bounds.from_period
JOIN customer_segments b ON b.period = bounds.to_period AND b.customer_id = a.customer_id
LEFT JOIN customer_value v ON v.period = b.period AND v.customer_id = b.customer_id
LEFT JOIN customer_features f ON f.period = b.period AND f.customer_id = b.customer_id
WHERE a.rfm8_code = '111'
  AND b.rfm8_code = '011'
ORDER BY v.clv DESC NULLS LAST, b.customer_id;
