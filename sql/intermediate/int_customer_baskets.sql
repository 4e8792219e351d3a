-- Intermediate: what each customer buys, from the lines of completed orders up to the as-of
-- date. Shares are of net spend: bought on discount, on premium-tier products, on products
-- launched within ${new_product_days} days. price_index = net paid / list value.
SELECT
    customer_id,
    sum(net)                                                            AS net_spend,
    sum(CASE WHEN is_discounted THEN net ELSE 0 END) / nullif(sum(net), 0)  AS discount_share,
    sum(CASE WHEN is_premium THEN net ELSE 0 END) / nullif(sum(net), 0)     AS premium_share,
    sum(CASE WHEN is_new THEN net ELSE 0 END) / nullif(sum(net), 0)         AS new_product_share,
    sum(net) / nullif(sum(list_value), 0)                               AS price_index,
    count(DISTINCT category)                                            AS categories,
    count(*)                                                            AS lines
FROM int_order_lines
WHERE status = 'completed'
GROUP BY customer_id
