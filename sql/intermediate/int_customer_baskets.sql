-- Intermediate: what each customer buys, from the lines of completed orders up to the as-of
-- date. Shares are of net spend: bought on discount, on premium-tier products, on products
-- launched within ${new_product_days} days. The *_line_share columns are the same shares counted
-- in order lines rather than spend (one premium line weighs as much as one budget line); the
-- preference-type scheme reads them by default. price_index = net paid / list value.
-- Distinct categories are counted from a distinct (customer, category) list rather than with
-- count(DISTINCT ...) per customer, which holds a hash set per customer and needs far more memory.
WITH lines AS (
    SELECT * FROM int_order_lines WHERE status = 'completed'
),
spend AS (
    SELECT
        customer_id,
        sum(net)                                                        AS net_spend,
        CAST(coalesce(sum(CASE WHEN is_discounted THEN net END), 0) AS DOUBLE)
            / CAST(nullif(sum(net), 0) AS DOUBLE)                       AS discount_share,
        CAST(coalesce(sum(CASE WHEN is_premium THEN net END), 0) AS DOUBLE)
            / CAST(nullif(sum(net), 0) AS DOUBLE)                       AS premium_share,
        CAST(coalesce(sum(CASE WHEN is_new THEN net END), 0) AS DOUBLE)
            / CAST(nullif(sum(net), 0) AS DOUBLE)                       AS new_product_share,
        CAST(sum(CASE WHEN is_discounted THEN 1 ELSE 0 END) AS DOUBLE) / CAST(count(*) AS DOUBLE) AS discount_line_share,
        CAST(sum(CASE WHEN is_premium THEN 1 ELSE 0 END) AS DOUBLE) / CAST(count(*) AS DOUBLE)    AS premium_line_share,
        CAST(sum(CASE WHEN is_new THEN 1 ELSE 0 END) AS DOUBLE) / CAST(count(*) AS DOUBLE)        AS new_product_line_share,
        CAST(sum(net) AS DOUBLE) / CAST(nullif(sum(list_value), 0) AS DOUBLE) AS price_index,
        count(*)                                                        AS lines
    FROM lines
    GROUP BY customer_id
),
categories AS (
    SELECT customer_id, count(*) AS categories
    FROM (SELECT DISTINCT customer_id, category FROM lines WHERE category IS NOT NULL) AS d
    GROUP BY customer_id
)
SELECT
    s.customer_id,
    s.net_spend,
    s.discount_share,
    s.premium_share,
    s.new_product_share,
    s.discount_line_share,
    s.premium_line_share,
    s.new_product_line_share,
    s.price_index,
    coalesce(c.categories, 0)                                           AS categories,
    s.lines
FROM spend s
LEFT JOIN categories c ON s.customer_id = c.customer_id
