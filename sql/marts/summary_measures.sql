-- Mart (segments model input): what segment_summary aggregates per segment, one row per customer
-- of the period. The segments model groups it by every scheme's segment in one pass
-- (summary_measures_by_segment: `customers` = count(*), and per column sum_ / count_ for
-- integers and decimals, avg_ for decimals, median_ for floats); segment_summary computes the
-- rates from those sums. Conditions are 0/1 columns here, so their sums count customers.
-- Decimal casts keep the means exact: a float sum in parallel would differ in its last bits
-- between runs.
SELECT
    f.customer_id,
    f.revenue,
    f.margin,
    f.period_revenue,
    f.orders,
    CAST(v.clv AS DECIMAL(18, 4))                                       AS clv_exact,
    v.clv,
    CASE WHEN f.orders > 1 THEN f.orders - 1 ELSE 0 END                 AS repeat_orders,
    CASE WHEN f.previous_period_orders > 0 AND f.period_orders > 0 THEN 1 ELSE 0 END AS retained,
    CASE WHEN f.previous_period_orders > 0 THEN 1 ELSE 0 END            AS previously_active,
    CASE WHEN f.complaints > 0 THEN 1 ELSE 0 END                        AS complainer,
    f.satisfaction_sum,
    f.satisfaction_n,
    CASE WHEN f.nps >= 9 THEN 1 ELSE 0 END                              AS promoter,
    CASE WHEN f.nps <= 6 THEN 1 ELSE 0 END                              AS detractor,
    CASE WHEN f.nps IS NOT NULL THEN 1 ELSE 0 END                       AS nps_answered,
    f.campaign_contacts,
    f.campaign_responses,
    f.campaign_conversions,
    f.attributed_revenue,
    f.contact_cost,
    f.interactions,
    CAST(f.price_index AS DECIMAL(18, 8))                               AS price_index,
    -- the profile positioning's strategy rules read: means over the segment's buyers
    -- (customers with a completed order; the line shares and recency are null for the others)
    CASE WHEN f.orders > 0 THEN 1 ELSE 0 END                            AS buyer,
    CASE WHEN f.period_orders > 0 THEN 1 ELSE 0 END                     AS active,
    CASE WHEN f.orders = 1 THEN 1 ELSE 0 END                            AS one_order,
    f.recency_days,
    CASE WHEN f.orders > 0 THEN arrow_cast(f.as_of, 'Int32') - arrow_cast(f.first_order_date, 'Int32') END
                                                                        AS days_since_first_order,
    CAST(f.discount_line_share AS DECIMAL(18, 8))                       AS discount_line_share,
    CAST(f.premium_line_share AS DECIMAL(18, 8))                        AS premium_line_share,
    CAST(f.new_product_line_share AS DECIMAL(18, 8))                    AS new_product_line_share
FROM customer_features f
LEFT JOIN customer_value v ON f.customer_id = v.customer_id
