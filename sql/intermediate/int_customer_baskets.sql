-- Intermediate: what each customer buys, from the lines of completed orders up to the as-of
-- date. Shares are of net spend: bought on discount, on premium-tier products, on products
-- launched within ${new_product_days} days. price_index = net paid / list value.
SELECT
    customer_id,
    sum(net)                                                            AS net_spend,
    CAST(coalesce(sum(CASE WHEN is_discounted THEN net END), 0) AS DOUBLE) / CAST(nullif(sum(net), 0) AS DOUBLE) AS discount_share,
    CAST(coalesce(sum(CASE WHEN is_premium THEN net END), 0) AS DOUBLE) / CAST(nullif(sum(net), 0) AS DOUBLE) AS premium_share,
    CAST(coalesce(sum(CASE WHEN is_new THEN net END), 0) AS DOUBLE) / CAST(nullif(sum(net), 0) AS DOUBLE) AS new_product_share,
    CAST(sum(net) AS DOUBLE) / CAST(nullif(sum(list_value), 0) AS DOUBLE) AS price_index,
    count(DISTINCT category)                                            AS categories,
    count(*)                                                            AS lines
FROM int_order_lines
WHERE status = 'completed'
GROUP BY customer_id
