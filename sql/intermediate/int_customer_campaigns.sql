-- Intermediate: campaign contacts per customer up to the as-of date. A response is a contact
-- with a response time; a conversion is a contact whose converted order is a completed order;
-- attributed revenue is those orders' amounts; contact_cost spreads each campaign's cost evenly
-- over all its contacts (6 decimals, so sums stay exact).
WITH per_campaign AS (
    SELECT campaign_id, count(*) AS contacts FROM stg_campaign_contacts GROUP BY campaign_id
),
contacts AS (
    SELECT
        c.customer_id,
        c.responded_ts IS NOT NULL AND CAST(c.responded_ts AS DATE) <= ${as_of} AS responded,
        o.order_id IS NOT NULL                                          AS converted,
        coalesce(o.total_amount, CAST(0 AS DECIMAL(18, 4)))                        AS attributed_revenue,
        CAST(k.cost / p.contacts AS DECIMAL(18, 6))                     AS contact_cost
    FROM stg_campaign_contacts c
    JOIN per_campaign p ON c.campaign_id = p.campaign_id
    LEFT JOIN stg_campaigns k ON c.campaign_id = k.campaign_id
    LEFT JOIN int_orders o
        ON c.converted_order_id = o.order_id AND o.status = 'completed' AND o.customer_id = c.customer_id
    WHERE CAST(c.contacted_ts AS DATE) <= ${as_of}
)
SELECT
    customer_id,
    count(*)                                                            AS campaign_contacts,
    sum(CASE WHEN responded THEN 1 ELSE 0 END)                          AS campaign_responses,
    sum(CASE WHEN converted THEN 1 ELSE 0 END)                          AS campaign_conversions,
    sum(attributed_revenue)                                             AS attributed_revenue,
    sum(contact_cost)                                                   AS contact_cost
FROM contacts
GROUP BY customer_id
