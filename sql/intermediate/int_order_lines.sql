-- Intermediate: order lines of orders placed up to the as-of date, priced and flagged.
-- gross = quantity x unit price (the list price when the line has none); net = gross - discount;
-- a line is "new" when its product launched within ${new_product_days} days before the order.
SELECT
    i.order_id,
    i.line_no,
    i.product_id,
    o.customer_id,
    o.order_date,
    o.status,
    p.category,
    p.price_tier,
    i.quantity,
    i.quantity * coalesce(i.unit_price, p.list_price)                  AS gross,
    i.discount,
    i.quantity * coalesce(i.unit_price, p.list_price) - i.discount     AS net,
    i.quantity * i.unit_cost                                            AS cost,
    i.quantity * p.list_price                                           AS list_value,
    i.discount > 0                                                      AS is_discounted,
    coalesce(p.price_tier = 'premium', false)                          AS is_premium,
    coalesce(
        p.launch_date <= o.order_date
        -- days between the launch and the order (dates as day numbers)
        AND arrow_cast(o.order_date, 'Int32') - arrow_cast(p.launch_date, 'Int32') < ${new_product_days},
        false)                                                          AS is_new
FROM stg_order_items i
JOIN stg_orders o ON i.order_id = o.order_id
LEFT JOIN stg_products p ON i.product_id = p.product_id
WHERE o.order_date <= ${as_of}
