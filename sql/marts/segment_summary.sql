-- Mart: segment_summary, one row per (scheme, segment). Metric definitions and denominators are
-- in docs/metrics.md; every rate is null when its denominator is zero or its input is missing.
-- The per-customer marts it aggregates (summary_measures, summary_categories, summary_channels,
-- summary_profiles) reach it grouped by every scheme's segment (the segments model's
-- summary_*_by_segment tables: `customers` = count(*), sum_<column>, count_<column> and, for
-- decimals, avg_<column>, DataFusion's avg): grouping them here would need the scheme x
-- customer labels joined to each first, one row per customer and scheme.
WITH segments AS (
    SELECT
        scheme,
        segment,
        customers,
        sum_revenue                                                     AS revenue,
        sum_margin                                                      AS margin,
        sum_period_revenue                                              AS period_revenue,
        CAST(avg_clv_exact AS DOUBLE)                                   AS avg_clv,
        median_clv,
        CAST(sum_revenue AS DOUBLE) / nullif(sum_orders, 0)             AS avg_order_value,
        CAST(sum_repeat_orders AS DOUBLE) / nullif(sum_orders, 0)       AS repeat_purchase_rate,
        CAST(sum_retained AS DOUBLE) / nullif(sum_previously_active, 0) AS retention_rate,
        CAST(sum_complainer AS DOUBLE) / customers                      AS complaint_rate,
        CAST(sum_satisfaction_sum AS DOUBLE) / nullif(sum_satisfaction_n, 0) AS avg_satisfaction,
        100.0 * (sum_promoter - sum_detractor) / nullif(sum_nps_answered, 0) AS nps,
        CAST(sum_campaign_responses AS DOUBLE) / nullif(sum_campaign_contacts, 0)   AS response_rate,
        CAST(sum_campaign_conversions AS DOUBLE) / nullif(sum_campaign_contacts, 0) AS conversion_rate,
        CAST(sum_attributed_revenue AS DOUBLE) / CAST(nullif(sum_contact_cost, 0) AS DOUBLE) AS marketing_roi,
        CAST(sum_interactions AS DOUBLE) / customers                    AS interactions_per_customer,
        CAST(avg_price_index AS DOUBLE)                                 AS avg_price_index,
        -- the segment's profile, read by positioning's strategy rules (docs/segments.md): means
        -- over the segment's buyers (customers with a completed order)
        CAST(sum_buyer AS DOUBLE) / customers                           AS buyer_share,
        CAST(sum_active AS DOUBLE) / customers                          AS active_share,
        CAST(sum_orders AS DOUBLE) / nullif(sum_buyer, 0)               AS avg_orders,
        CAST(sum_one_order AS DOUBLE) / nullif(sum_buyer, 0)            AS one_order_share,
        CAST(sum_recency_days AS DOUBLE) / nullif(count_recency_days, 0) AS avg_recency_days,
        CAST(sum_days_since_first_order AS DOUBLE) / nullif(count_days_since_first_order, 0)
                                                                        AS avg_days_since_first_order,
        CAST(avg_discount_line_share AS DOUBLE)                         AS avg_discount_line_share,
        CAST(avg_premium_line_share AS DOUBLE)                          AS avg_premium_line_share,
        CAST(avg_new_product_line_share AS DOUBLE)                      AS avg_new_product_line_share,
        -- the scheme's totals: every customer has one segment per scheme
        sum(customers) OVER (PARTITION BY scheme)                       AS scheme_customers,
        sum(sum_revenue) OVER (PARTITION BY scheme)                     AS scheme_revenue,
        sum(sum_margin) OVER (PARTITION BY scheme)                      AS scheme_margin
    FROM summary_measures_by_segment
),
stability AS (
    SELECT
        scheme,
        from_segment                                                    AS segment,
        CAST(sum(CASE WHEN stayed THEN customers ELSE 0 END) AS DOUBLE) / sum(customers) AS stability
    FROM segment_migration
    GROUP BY scheme, from_segment
),
segment_categories AS (
    SELECT
        scheme,
        segment,
        category,
        row_number() OVER (PARTITION BY scheme, segment ORDER BY sum_spend DESC, category) AS rank
    FROM summary_categories_by_segment
),
top_categories AS (
    SELECT scheme, segment, string_agg(category, ', ' ORDER BY rank) AS top_categories
    FROM segment_categories
    WHERE rank <= ${top_categories}
    GROUP BY scheme, segment
),
segment_channels AS (
    SELECT
        scheme,
        segment,
        channel,
        sum_orders AS orders,
        sum(sum_orders) OVER (PARTITION BY scheme, segment) AS segment_orders
    FROM summary_channels_by_segment
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
    SELECT scheme, segment, age_band, region, grouping(age_band) AS by_region, sum(customers) AS customers
    FROM summary_profiles_by_segment
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
