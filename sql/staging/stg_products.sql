-- Staging: products. One row per product_id (the first occurrence wins); price tiers are
-- normalised to budget / standard / premium, anything else becomes null and is counted.
WITH typed AS (
    SELECT
        _source_file,
        _row_number,
        nullif(trim(product_id), '')                                    AS product_id,
        nullif(lower(trim(category)), '')                               AS category,
        nullif(trim(brand), '')                                         AS brand,
        nullif(lower(trim(price_tier)), '')                             AS price_tier_text,
        try_cast(nullif(trim(list_price), '') AS DECIMAL(18, 4))        AS list_price,
        try_cast(nullif(trim(launch_date), '') AS DATE)                 AS launch_date
    FROM raw.products
),
ranked AS (
    SELECT *, row_number() OVER (PARTITION BY product_id ORDER BY _source_file, _row_number) AS occurrence
    FROM typed
)
SELECT
    _source_file,
    _row_number,
    CASE
        WHEN product_id IS NULL THEN 'missing_product_id'
        WHEN occurrence > 1 THEN 'duplicate_product_id'
    END                                                                 AS _reject_reason,
    CASE WHEN price_tier_text IS NOT NULL AND price_tier_text NOT IN ('budget', 'standard', 'premium')
         THEN 'unknown_price_tier' END                                  AS _notes,
    product_id,
    category,
    brand,
    CASE WHEN price_tier_text IN ('budget', 'standard', 'premium') THEN price_tier_text END AS price_tier,
    list_price,
    launch_date
FROM ranked
