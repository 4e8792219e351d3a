-- Mart (segments model input): each customer's completed orders per sales channel, grouped by
-- segment into summary_channels_by_segment (sum_orders per scheme, segment and channel) for
-- segment_summary's channel_mix.
SELECT customer_id, coalesce(channel, 'unknown') AS channel, count(*) AS orders
FROM int_orders
WHERE status = 'completed'
GROUP BY customer_id, coalesce(channel, 'unknown')
