-- Mart: customer_features, one row per customer of the period (docs/contract.md). Day counts
-- are calendar days up to the as-of date; frequency counts repeat purchase days (distinct days
-- with a completed order, after the first).
SELECT
    c.customer_id,
    ${as_of}                                                     AS as_of,
    o.first_order_date,
    o.last_order_date,
    arrow_cast(${as_of}, 'Int32') - arrow_cast(o.last_order_date, 'Int32') AS recency_days,
    CASE WHEN o.purchase_days > 0 THEN o.purchase_days - 1 ELSE 0 END   AS frequency,
    coalesce(o.orders, 0)                                               AS orders,
    coalesce(o.revenue, CAST(0 AS DECIMAL(18, 4)))                                 AS revenue,
    coalesce(o.margin, CASE WHEN coalesce(o.orders, 0) = 0 THEN CAST(0 AS DECIMAL(18, 4)) END) AS margin,
    CAST(o.revenue AS DOUBLE) / nullif(o.orders, 0)                    AS avg_order_value,
    arrow_cast(${as_of}, 'Int32')
        - arrow_cast(coalesce(c.signup_date, o.first_order_date), 'Int32') AS tenure_days,
    b.discount_share,
    b.premium_share,
    b.new_product_share,
    b.discount_line_share,
    b.premium_line_share,
    b.new_product_line_share,
    b.price_index,
    coalesce(b.categories, 0)                                           AS categories,
    coalesce(s.complaints, 0)                                           AS complaints,
    coalesce(s.interactions, 0)                                         AS interactions,
    s.avg_satisfaction,
    coalesce(s.satisfaction_sum, 0)                                     AS satisfaction_sum,
    coalesce(s.satisfaction_n, 0)                                       AS satisfaction_n,
    s.nps,
    coalesce(k.campaign_contacts, 0)                                    AS campaign_contacts,
    coalesce(k.campaign_responses, 0)                                   AS campaign_responses,
    coalesce(k.campaign_conversions, 0)                                 AS campaign_conversions,
    coalesce(k.attributed_revenue, CAST(0 AS DECIMAL(18, 4)))                      AS attributed_revenue,
    coalesce(k.contact_cost, CAST(0 AS DECIMAL(18, 6)))                 AS contact_cost,
    coalesce(o.period_orders, 0)                                        AS period_orders,
    coalesce(o.period_revenue, CAST(0 AS DECIMAL(18, 4)))                          AS period_revenue,
    coalesce(o.previous_period_orders, 0)                               AS previous_period_orders,
    o.last_order_before_period,
    coalesce(o.online_orders, 0)                                        AS online_orders,
    c.age_band,
    c.income_band,
    c.gender,
    c.region,
    c.acquisition_channel,
    c.membership_tier,
    c.signup_date
FROM int_customers c
LEFT JOIN int_customer_orders o ON c.customer_id = o.customer_id
LEFT JOIN int_customer_baskets b ON c.customer_id = b.customer_id
LEFT JOIN int_customer_service s ON c.customer_id = s.customer_id
LEFT JOIN int_customer_campaigns k ON c.customer_id = k.customer_id
