-- Segment trend over periods: per segment of one scheme (default rfm8; SET VARIABLE scheme =
-- 'lifecycle' for another), its customers, shares and average CLV in every published period,
-- and the change in customers versus the period before.
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
WHERE scheme = coalesce(getvariable('scheme'), 'rfm8')
ORDER BY segment, period;
