-- Mart (segments model input): each customer's completed net spend per product category, grouped
-- by segment into summary_categories_by_segment (sum_spend per scheme, segment and category)
-- for segment_summary's top_categories.
SELECT customer_id, category, sum(net) AS spend
FROM int_order_lines
WHERE status = 'completed' AND category IS NOT NULL
GROUP BY customer_id, category
