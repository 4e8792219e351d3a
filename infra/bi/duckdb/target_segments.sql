-- Target segments of a period (default: the latest with positioning; SET VARIABLE period =
-- '2024-06' for another): rank, size, value and the marketing mix chosen for each.
WITH chosen AS (
    SELECT coalesce(getvariable('period'), (SELECT max(period) FROM positioning)) AS period
)
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
JOIN chosen c ON p.period = c.period
LEFT JOIN segment_summary s ON s.period = p.period AND s.scheme = p.scheme AND s.segment = p.segment
WHERE p.is_target
ORDER BY p.scheme, p.target_rank, p.segment;
