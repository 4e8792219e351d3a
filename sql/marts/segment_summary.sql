-- Mart: segment_summary, one row per (scheme, segment). Metric definitions and denominators are
-- in docs/metrics.md; every rate is null when its denominator is zero or its input is missing.
-- DataFusion inlines a CTE at every reference, so `labelled` (the scheme x customer labels joined
-- to the features) is referenced twice only: once by `segments` (the scheme totals are window sums
-- over its groups, exact since money is decimal) and once by `profile_counts` (age bands and
-- regions in one aggregation by grouping sets).
-- The CLV joins the features before the labels do: joined to the labels' output instead, the
-- hash join kept the 9 M joined rows as its build side (the run's memory peak, 4-5 GiB at 1 M
-- customers).
WITH customers AS (
    SELECT f.*, v.clv
    FROM customer_features f
    LEFT JOIN customer_value v ON f.customer_id = v.customer_id
),
labelled AS (
    SELECT l.scheme, l.segment, c.*
    FROM customers c
    JOIN customer_segment_labels l ON l.customer_id = c.customer_id
),
segments AS (
    SELECT
        scheme,
        segment,
        count(*)                                                        AS customers,
        sum(revenue)                                                    AS revenue,
        sum(margin)                                                     AS margin,
        sum(period_revenue)                                             AS period_revenue,
        CAST(avg(CAST(clv AS DECIMAL(18, 4))) AS DOUBLE)                  AS avg_clv,
        median(clv)                                                     AS median_clv,
        CAST(sum(revenue) AS DOUBLE) / nullif(sum(orders), 0)             AS avg_order_value,
        CAST(sum(CASE WHEN orders > 1 THEN orders - 1 ELSE 0 END) AS DOUBLE)
            / nullif(sum(orders), 0)                                    AS repeat_purchase_rate,
        CAST(sum(CASE WHEN previous_period_orders > 0 AND period_orders > 0 THEN 1 ELSE 0 END) AS DOUBLE)
            / nullif(sum(CASE WHEN previous_period_orders > 0 THEN 1 ELSE 0 END), 0) AS retention_rate,
        CAST(sum(CASE WHEN complaints > 0 THEN 1 ELSE 0 END) AS DOUBLE) / count(*) AS complaint_rate,
        CAST(sum(satisfaction_sum) AS DOUBLE) / nullif(sum(satisfaction_n), 0) AS avg_satisfaction,
        100.0 * (sum(CASE WHEN nps >= 9 THEN 1 ELSE 0 END) - sum(CASE WHEN nps <= 6 THEN 1 ELSE 0 END))
            / nullif(count(nps), 0)                                     AS nps,
        CAST(sum(campaign_responses) AS DOUBLE) / nullif(sum(campaign_contacts), 0)   AS response_rate,
        CAST(sum(campaign_conversions) AS DOUBLE) / nullif(sum(campaign_contacts), 0) AS conversion_rate,
        CAST(sum(attributed_revenue) AS DOUBLE) / CAST(nullif(sum(contact_cost), 0) AS DOUBLE) AS marketing_roi,
        CAST(sum(interactions) AS DOUBLE) / count(*)                    AS interactions_per_customer,
        -- a decimal mean: a parallel float sum would differ in the last bits between runs
        CAST(avg(CAST(price_index AS DECIMAL(18, 8))) AS DOUBLE)          AS avg_price_index,
        -- the segment's profile, read by positioning's strategy rules (docs/segments.md): means
        -- over the segment's buyers (customers with a completed order; the line shares and
        -- recency are null for the others), decimal means for the same reason as above
        CAST(sum(CASE WHEN orders > 0 THEN 1 ELSE 0 END) AS DOUBLE) / count(*) AS buyer_share,
        CAST(sum(CASE WHEN period_orders > 0 THEN 1 ELSE 0 END) AS DOUBLE) / count(*) AS active_share,
        CAST(sum(orders) AS DOUBLE) / nullif(sum(CASE WHEN orders > 0 THEN 1 ELSE 0 END), 0) AS avg_orders,
        CAST(sum(CASE WHEN orders = 1 THEN 1 ELSE 0 END) AS DOUBLE)
            / nullif(sum(CASE WHEN orders > 0 THEN 1 ELSE 0 END), 0)    AS one_order_share,
        CAST(avg(recency_days) AS DOUBLE)                               AS avg_recency_days,
        CAST(avg(CASE WHEN orders > 0 THEN arrow_cast(as_of, 'Int32') - arrow_cast(first_order_date, 'Int32') END) AS DOUBLE)
                                                                        AS avg_days_since_first_order,
        CAST(avg(CAST(discount_line_share AS DECIMAL(18, 8))) AS DOUBLE)  AS avg_discount_line_share,
        CAST(avg(CAST(premium_line_share AS DECIMAL(18, 8))) AS DOUBLE)   AS avg_premium_line_share,
        CAST(avg(CAST(new_product_line_share AS DECIMAL(18, 8))) AS DOUBLE) AS avg_new_product_line_share,
        -- the scheme's totals: every customer has one segment per scheme
        sum(count(*)) OVER (PARTITION BY scheme)                        AS scheme_customers,
        sum(sum(revenue)) OVER (PARTITION BY scheme)                    AS scheme_revenue,
        sum(sum(margin)) OVER (PARTITION BY scheme)                     AS scheme_margin
    FROM labelled
    GROUP BY scheme, segment
),
stability AS (
    SELECT
        scheme,
        from_segment                                                    AS segment,
        CAST(sum(CASE WHEN stayed THEN customers ELSE 0 END) AS DOUBLE) / sum(customers) AS stability
    FROM segment_migration
    GROUP BY scheme, from_segment
),
customer_categories AS (
    SELECT customer_id, category, sum(net) AS spend
    FROM int_order_lines
    WHERE status = 'completed' AND category IS NOT NULL
    GROUP BY customer_id, category
),
segment_categories AS (
    SELECT
        l.scheme,
        l.segment,
        c.category,
        row_number() OVER (PARTITION BY l.scheme, l.segment ORDER BY sum(c.spend) DESC, c.category) AS rank
    FROM customer_segment_labels l
    JOIN customer_categories c ON l.customer_id = c.customer_id
    GROUP BY l.scheme, l.segment, c.category
),
top_categories AS (
    SELECT scheme, segment, string_agg(category, ', ' ORDER BY rank) AS top_categories
    FROM segment_categories
    WHERE rank <= ${top_categories}
    GROUP BY scheme, segment
),
customer_channels AS (
    SELECT customer_id, coalesce(channel, 'unknown') AS channel, count(*) AS orders
    FROM int_orders
    WHERE status = 'completed'
    GROUP BY customer_id, coalesce(channel, 'unknown')
),
segment_channels AS (
    SELECT
        l.scheme,
        l.segment,
        c.channel,
        sum(c.orders) AS orders,
        sum(sum(c.orders)) OVER (PARTITION BY l.scheme, l.segment) AS segment_orders
    FROM customer_segment_labels l
    JOIN customer_channels c ON l.customer_id = c.customer_id
    GROUP BY l.scheme, l.segment, c.channel
),
channel_mix AS (
    SELECT
        scheme,
        segment,
        string_agg(
            channel || ' ' || CAST(CAST(round(100.0 * orders / segment_orders) AS BIGINT) AS VARCHAR) || '%',
            ', ' ORDER BY orders DESC, channel) AS channel_mix
    FROM segment_channels
    GROUP BY scheme, segment
),
-- customers per age band and per region of each segment; by_region tells the two sets apart
profile_counts AS (
    SELECT scheme, segment, age_band, region, grouping(age_band) AS by_region, count(*) AS customers
    FROM labelled
    GROUP BY GROUPING SETS ((scheme, segment, age_band), (scheme, segment, region))
),
-- the most common known age band and region (ties: the first by name)
profile_ranks AS (
    SELECT
        scheme,
        segment,
        age_band,
        region,
        by_region,
        row_number() OVER (
            PARTITION BY scheme, segment, by_region ORDER BY customers DESC, age_band, region
        ) AS rank
    FROM profile_counts
    WHERE (by_region = 0 AND age_band IS NOT NULL) OR (by_region = 1 AND region IS NOT NULL)
),
dominant AS (
    SELECT
        scheme,
        segment,
        max(CASE WHEN by_region = 0 THEN age_band END)                  AS age_band,
        max(CASE WHEN by_region = 1 THEN region END)                    AS region
    FROM profile_ranks
    WHERE rank = 1
    GROUP BY scheme, segment
)
SELECT
    s.scheme,
    s.segment,
    s.customers,
    CAST(s.customers AS DOUBLE) / s.scheme_customers                    AS customer_share,
    s.revenue,
    CAST(s.revenue AS DOUBLE) / CAST(nullif(s.scheme_revenue, 0) AS DOUBLE) AS revenue_share,
    CAST(s.margin AS DOUBLE) / CAST(nullif(s.scheme_margin, 0) AS DOUBLE) AS margin_share,
    s.margin,
    CAST(s.margin AS DOUBLE) / s.customers                              AS avg_margin,
    s.avg_price_index,
    s.period_revenue,
    s.avg_clv,
    s.median_clv,
    s.avg_order_value,
    s.repeat_purchase_rate,
    s.retention_rate,
    s.complaint_rate,
    s.avg_satisfaction,
    s.nps,
    s.response_rate,
    s.conversion_rate,
    s.marketing_roi,
    s.interactions_per_customer,
    p.customers                                                         AS previous_customers,
    CAST(s.customers AS DOUBLE) / nullif(p.customers, 0) - 1.0          AS growth_vs_previous,
    st.stability,
    s.avg_clv - p.avg_clv                                               AS clv_change,
    tc.top_categories,
    cm.channel_mix,
    d.age_band                                                          AS dominant_age_band,
    d.region                                                            AS dominant_region,
    s.buyer_share,
    s.active_share,
    s.avg_orders,
    s.one_order_share,
    s.avg_recency_days,
    s.avg_days_since_first_order,
    s.avg_discount_line_share,
    s.avg_premium_line_share,
    s.avg_new_product_line_share
FROM segments s
LEFT JOIN previous.segment_summary p ON s.scheme = p.scheme AND s.segment = p.segment
LEFT JOIN stability st ON s.scheme = st.scheme AND s.segment = st.segment
LEFT JOIN top_categories tc ON s.scheme = tc.scheme AND s.segment = tc.segment
LEFT JOIN channel_mix cm ON s.scheme = cm.scheme AND s.segment = cm.segment
LEFT JOIN dominant d ON s.scheme = d.scheme AND s.segment = d.segment
