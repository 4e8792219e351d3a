-- Mart: value_concentration, one row per period, over customers with at least one purchase:
-- the revenue and margin shares of the top 20% of customers (ranked by each), the customers
-- with negative margin and the margin they take away, and the Gini coefficient of revenue
-- (0 = everyone spends the same, 1 = one customer spends everything).
WITH buyers AS (
    SELECT customer_id, revenue, margin FROM customer_features WHERE orders > 0
),
ranked AS (
    SELECT
        revenue,
        margin,
        row_number() OVER (ORDER BY revenue DESC, customer_id)          AS revenue_rank,
        row_number() OVER (ORDER BY margin DESC NULLS LAST, customer_id) AS margin_rank,
        count(*) OVER ()                                                AS n
    FROM buyers
)
SELECT
    count(*)                                                            AS customers,
    CAST(sum(CASE WHEN revenue_rank <= ceil(${top_share} * n) THEN revenue END) AS DOUBLE)
        / CAST(nullif(sum(revenue), 0) AS DOUBLE)                       AS top20_revenue_share,
    CAST(sum(CASE WHEN margin_rank <= ceil(${top_share} * n) THEN margin END) AS DOUBLE)
        / CAST(nullif(sum(margin), 0) AS DOUBLE)                        AS top20_margin_share,
    sum(CASE WHEN margin < 0 THEN 1 ELSE 0 END)                         AS negative_margin_customers,
    coalesce(sum(CASE WHEN margin < 0 THEN margin END), 0)              AS negative_margin_total,
    2.0 * CAST(sum((n - revenue_rank + 1) * revenue) AS DOUBLE)
        / CAST(nullif(max(n) * sum(revenue), 0) AS DOUBLE)
        - (max(n) + 1.0) / max(n)                                       AS gini_revenue
FROM ranked
