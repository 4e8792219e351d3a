-- Intermediate: the customer universe of the period, one row per customer. With a customers
-- extract: every customer signed up by the as-of date (or without a signup date) plus any
-- customer with orders by then; without one: the customers of valid orders. Demographics are
-- banded here; exact birth dates and incomes (PII) go no further.
WITH ordered AS (
    SELECT DISTINCT customer_id FROM int_orders
),
known AS (
    SELECT
        *,
        floor((arrow_cast(${as_of}, 'Int32') - arrow_cast(birth_date, 'Int32')) / 365.25) AS age_years
    FROM stg_customers
)
SELECT
    coalesce(k.customer_id, o.customer_id)                              AS customer_id,
    k.signup_date,
    k.gender,
    k.region,
    k.country,
    k.acquisition_channel,
    k.membership_tier,
    CASE
        WHEN k.birth_date IS NULL THEN NULL
        WHEN k.age_years < 18 THEN 'under 18'
        WHEN k.age_years < 25 THEN '18-24'
        WHEN k.age_years < 35 THEN '25-34'
        WHEN k.age_years < 45 THEN '35-44'
        WHEN k.age_years < 55 THEN '45-54'
        WHEN k.age_years < 65 THEN '55-64'
        ELSE '65+'
    END                                                                 AS age_band,
    CASE
        WHEN k.annual_income IS NULL THEN NULL
        WHEN k.annual_income < 30000 THEN 'under 30k'
        WHEN k.annual_income < 60000 THEN '30k-60k'
        WHEN k.annual_income < 100000 THEN '60k-100k'
        ELSE '100k+'
    END                                                                 AS income_band
FROM known k
FULL OUTER JOIN ordered o ON k.customer_id = o.customer_id
WHERE o.customer_id IS NOT NULL
   OR k.signup_date IS NULL
   OR k.signup_date <= ${as_of}
