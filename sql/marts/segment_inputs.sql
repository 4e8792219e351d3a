-- Mart (model input): what the segmentation schemes read, one row per customer of the period:
-- the customer's features and predicted value.
SELECT
    f.*,
    arrow_cast(f.as_of, 'Int32') - arrow_cast(f.first_order_date, 'Int32') AS days_since_first_order,
    arrow_cast(${period_start}, 'Int32') - arrow_cast(f.last_order_before_period, 'Int32')
                                                                        AS days_without_purchase_before_period,
    v.clv,
    v.p_alive,
    v.expected_purchases,
    v.clv_decile,
    v.clv_method
FROM customer_features f
LEFT JOIN customer_value v ON f.customer_id = v.customer_id
