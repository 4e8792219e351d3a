-- Mart: segment_summary, one row per (scheme, segment). Metric definitions and denominators are
-- in docs/metrics.md; every rate is null when its denominator is zero or its input is missing.
WITH labelled AS (
    SELECT l.scheme, l.segment, f.*, v.clv
    FROM customer_segment_labels l
    JOIN customer_features f ON l.customer_id = f.customer_id
    LEFT JOIN customer_value v ON l.customer_id = v.customer_id
),
totals AS (
    SELECT scheme, count(*) AS customers, sum(revenue) AS revenue, sum(margin) AS margin
    FROM labelled
    GROUP BY scheme
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
        CAST(avg(CAST(new_product_line_share AS DECIMAL(18, 8))) AS DOUBLE) AS avg_new_product_line_share
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
age_bands AS (
    SELECT scheme, segment, age_band,
           row_number() OVER (PARTITION BY scheme, segment ORDER BY count(*) DESC, age_band) AS rank
    FROM labelled
    WHERE age_band IS NOT NULL
    GROUP BY scheme, segment, age_band
),
regions AS (
    SELECT scheme, segment, region,
           row_number() OVER (PARTITION BY scheme, segment ORDER BY count(*) DESC, region) AS rank
    FROM labelled
    WHERE region IS NOT NULL
    GROUP BY scheme, segment, region
)
SELECT
    s.scheme,
    s.segment,
    s.customers,
    CAST(s.customers AS DOUBLE) / t.customers                           AS customer_share,
    s.revenue,
    CAST(s.revenue AS DOUBLE) / CAST(nullif(t.revenue, 0) AS DOUBLE)  AS revenue_share,
    CAST(s.margin AS DOUBLE) / CAST(nullif(t.margin, 0) AS DOUBLE)    AS margin_share,
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
    ab.age_band                                                         AS dominant_age_band,
    rg.region                                                           AS dominant_region,
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
JOIN totals t ON s.scheme = t.scheme
LEFT JOIN previous.segment_summary p ON s.scheme = p.scheme AND s.segment = p.segment
LEFT JOIN stability st ON s.scheme = st.scheme AND s.segment = st.segment
LEFT JOIN top_categories tc ON s.scheme = tc.scheme AND s.segment = tc.segment
LEFT JOIN channel_mix cm ON s.scheme = cm.scheme AND s.segment = cm.segment
LEFT JOIN age_bands ab ON s.scheme = ab.scheme AND s.segment = ab.segment AND ab.rank = 1
LEFT JOIN regions rg ON s.scheme = rg.scheme AND s.segment = rg.segment AND rg.rank = 1
