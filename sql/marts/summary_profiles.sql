-- Mart (segments model input): each customer's age band and region, grouped by segment into
-- summary_profiles_by_segment (customers per scheme, segment, age band and region) for
-- segment_summary's dominant_age_band and dominant_region.
SELECT customer_id, age_band, region
FROM customer_features
