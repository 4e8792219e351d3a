#!/usr/bin/env python3
"""The peer pipeline: what a data team would script today instead of crm-pipeline.

DuckDB runs the cleaning, joining and per-customer feature SQL over the same raw CSV extracts
(mirroring sql/staging, sql/intermediate and sql/marts/{clv_summary,customer_features}.sql),
lifetimes fits BG/NBD + Gamma-Gamma and scores discounted CLV with the settings of
pipeline.yaml models.clv, pandas computes RFM quintile scores (average-rank ties, like
jobs/models/rfm.rs), scikit-learn runs k-means on standardised behavioural features, and DuckDB
writes the results as Parquet.

Usage (inside the venv made by benches/side_by_side.sh):
    python benches/peers/peer_pipeline.py --raw DIR --out DIR [--period 2024-12] [--k 6]

Every stage is timed in-process: wall (time.perf_counter), CPU of all threads
(time.process_time) and peak RSS (the kernel's high-water mark, reset before each stage through
/proc/self/clear_refs, as crm-pipeline does). The last stdout line is a JSON summary; the full
stage list goes to OUT/peer_results.json. With --export-model-inputs the per-customer CLV inputs
(frequency, recency, T in weeks, monetary_value) and RFM inputs are also written to
OUT/clv_summary.csv and OUT/rfm_inputs.csv (untimed), so crm-pipeline's model code can be timed
on exactly the same rows (benches/clv.rs one-shot mode).
"""
import argparse
import calendar
import datetime as dt
import json
import os
import resource
import sys
import time

# Settings mirrored from pipeline.yaml (stages.params and models.clv).
NEW_PRODUCT_DAYS = 90
MAX_ORDER_AMOUNT = 1000000
MIN_VALID_DATE = "2000-01-01"
DAYS_PER_UNIT = 7.0  # models.clv.time_unit: week
HORIZON_DAYS = 365.0
STEP_DAYS = 30.0
ANNUAL_DISCOUNT = 0.10
RFM_BINS = 5
RFM_RULES = [  # models.rfm.segments, first match wins
    ("Champions", (4, 5), (4, 5), (4, 5)),
    ("Loyal Customers", (3, 5), (3, 5), (1, 5)),
    ("New Customers", (5, 5), (1, 1), (1, 5)),
    ("Potential Loyalist", (4, 5), (1, 2), (1, 5)),
    ("Promising", (3, 3), (1, 1), (1, 5)),
    ("Need Attention", (3, 3), (2, 2), (1, 5)),
    ("Can't Lose Them", (1, 1), (4, 5), (4, 5)),
    ("At Risk", (1, 2), (3, 5), (1, 5)),
    ("About To Sleep", (2, 2), (2, 2), (1, 5)),
    ("Hibernating", (2, 2), (1, 1), (1, 5)),
    ("Lost", (1, 1), (1, 2), (1, 5)),
]
KMEANS_FEATURES = [
    "recency_days", "frequency", "orders", "revenue", "avg_order_value", "tenure_days",
    "discount_share", "premium_share", "categories",
]

CSV = "read_csv('{path}/*.csv', all_varchar = true, header = true, filename = true, nullstr = '\\N')"


def staging_sql(raw):
    """Staging: type, clean, de-duplicate; rejected rows are dropped (no quarantine table)."""
    src = {s: CSV.format(path=os.path.join(raw, s)) for s in (
        "customers", "orders", "order_items", "products", "interactions", "campaigns",
        "campaign_contacts", "surveys")}
    email = r"'^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'"
    return [
        f"""CREATE TABLE stg_customers AS
WITH typed AS (
    SELECT filename AS _source_file,
        nullif(trim(customer_id), '') AS customer_id,
        nullif(trim(email), '') AS email_text,
        nullif(lower(trim(gender)), '') AS gender_text,
        try_cast(nullif(trim(birth_date), '') AS DATE) AS birth_date,
        nullif(lower(trim(occupation)), '') AS occupation,
        try_cast(nullif(trim(annual_income), '') AS DOUBLE) AS annual_income,
        nullif(lower(trim(education)), '') AS education,
        nullif(trim(country), '') AS country,
        nullif(lower(trim(region)), '') AS region,
        nullif(trim(city), '') AS city,
        try_cast(nullif(trim(signup_date), '') AS DATE) AS signup_date,
        nullif(lower(trim(acquisition_channel)), '') AS acquisition_channel,
        nullif(lower(trim(membership_tier)), '') AS membership_tier,
        try_cast(nullif(trim(updated_at), '') AS TIMESTAMP) AS updated_at
    FROM {src['customers']}
)
SELECT customer_id,
    CASE WHEN regexp_matches(email_text, {email}) THEN lower(email_text) END AS email,
    CASE WHEN gender_text IN ('f', 'female', 'w', 'woman') THEN 'F'
         WHEN gender_text IN ('m', 'male', 'man') THEN 'M'
         WHEN gender_text IS NULL THEN NULL ELSE 'other' END AS gender,
    birth_date, occupation, annual_income, education, country, region, city, signup_date,
    acquisition_channel, membership_tier, updated_at
FROM typed
WHERE customer_id IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY customer_id
                           ORDER BY updated_at DESC NULLS LAST, _source_file DESC) = 1""",
        f"""CREATE TABLE stg_orders AS
WITH typed AS (
    SELECT filename AS _source_file,
        nullif(trim(order_id), '') AS order_id,
        nullif(trim(customer_id), '') AS customer_id,
        try_cast(nullif(trim(order_ts), '') AS TIMESTAMP) AS order_ts,
        try_cast(nullif(trim(total_amount), '') AS DECIMAL(18, 4)) AS total_amount,
        coalesce(nullif(lower(trim(status)), ''), 'completed') AS status,
        nullif(lower(trim(channel)), '') AS channel,
        nullif(trim(store_id), '') AS store_id,
        nullif(upper(trim(currency)), '') AS currency,
        try_cast(nullif(trim(discount_amount), '') AS DECIMAL(18, 4)) AS discount_amount
    FROM {src['orders']}
)
SELECT order_id, customer_id, order_ts, CAST(order_ts AS DATE) AS order_date, total_amount,
    status, channel, store_id, currency, discount_amount
FROM typed
WHERE order_id IS NOT NULL AND customer_id IS NOT NULL AND order_ts IS NOT NULL
  AND order_ts >= TIMESTAMP '{MIN_VALID_DATE}'
  AND total_amount > 0 AND total_amount <= {MAX_ORDER_AMOUNT}
  AND customer_id IN (SELECT customer_id FROM stg_customers)
QUALIFY row_number() OVER (PARTITION BY order_id ORDER BY _source_file) = 1""",
        f"""CREATE TABLE stg_order_items AS
WITH typed AS (
    SELECT filename AS _source_file,
        nullif(trim(order_id), '') AS order_id,
        try_cast(nullif(trim(line_no), '') AS BIGINT) AS line_no,
        nullif(trim(product_id), '') AS product_id,
        quantity AS quantity_text,
        -- DuckDB rounds '1.5' to 2 when casting to an integer; DataFusion rejects it
        CASE WHEN regexp_full_match(trim(quantity), '[+-]?[0-9]+') THEN try_cast(trim(quantity) AS BIGINT) END AS quantity,
        nullif(trim(unit_price), '') AS unit_price_text,
        try_cast(nullif(trim(unit_price), '') AS DECIMAL(18, 4)) AS unit_price,
        try_cast(nullif(trim(discount), '') AS DECIMAL(18, 4)) AS discount,
        try_cast(nullif(trim(unit_cost), '') AS DECIMAL(18, 4)) AS unit_cost
    FROM {src['order_items']}
)
SELECT order_id, line_no, product_id, coalesce(quantity, 1) AS quantity, unit_price,
    coalesce(discount, CAST(0 AS DECIMAL(18, 4))) AS discount, unit_cost
FROM typed
WHERE order_id IS NOT NULL AND product_id IS NOT NULL
  AND NOT (quantity_text IS NOT NULL AND (quantity IS NULL OR quantity <= 0))
  AND NOT (unit_price_text IS NOT NULL AND (unit_price IS NULL OR unit_price < 0))
  AND order_id IN (SELECT order_id FROM stg_orders)
QUALIFY line_no IS NULL
     OR row_number() OVER (PARTITION BY order_id, line_no ORDER BY _source_file) = 1""",
        f"""CREATE TABLE stg_products AS
WITH typed AS (
    SELECT filename AS _source_file,
        nullif(trim(product_id), '') AS product_id,
        nullif(lower(trim(category)), '') AS category,
        nullif(trim(brand), '') AS brand,
        nullif(lower(trim(price_tier)), '') AS price_tier_text,
        try_cast(nullif(trim(list_price), '') AS DECIMAL(18, 4)) AS list_price,
        try_cast(nullif(trim(launch_date), '') AS DATE) AS launch_date
    FROM {src['products']}
)
SELECT product_id, category, brand,
    CASE WHEN price_tier_text IN ('budget', 'standard', 'premium') THEN price_tier_text END AS price_tier,
    list_price, launch_date
FROM typed
WHERE product_id IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY product_id ORDER BY _source_file) = 1""",
        f"""CREATE TABLE stg_interactions AS
WITH typed AS (
    SELECT nullif(trim(interaction_id), '') AS interaction_id,
        nullif(trim(customer_id), '') AS customer_id,
        try_cast(nullif(trim(ts), '') AS TIMESTAMP) AS ts,
        nullif(lower(trim(channel)), '') AS channel,
        nullif(lower(trim(type)), '') AS type_text,
        try_cast(nullif(trim(satisfaction), '') AS BIGINT) AS satisfaction
    FROM {src['interactions']}
)
SELECT interaction_id, customer_id, ts, CAST(ts AS DATE) AS interaction_date, channel,
    CASE WHEN type_text IN ('inquiry', 'complaint', 'suggestion', 'praise') THEN type_text
         WHEN type_text IS NULL THEN NULL ELSE 'other' END AS type,
    CASE WHEN satisfaction BETWEEN 1 AND 5 THEN satisfaction END AS satisfaction
FROM typed
WHERE customer_id IS NOT NULL AND ts IS NOT NULL
  AND customer_id IN (SELECT customer_id FROM stg_customers)""",
        f"""CREATE TABLE stg_surveys AS
WITH typed AS (
    SELECT nullif(trim(customer_id), '') AS customer_id,
        try_cast(nullif(trim(survey_ts), '') AS TIMESTAMP) AS survey_ts,
        try_cast(nullif(trim(nps), '') AS BIGINT) AS nps,
        try_cast(nullif(trim(satisfaction), '') AS BIGINT) AS satisfaction
    FROM {src['surveys']}
)
SELECT customer_id, survey_ts,
    CASE WHEN nps BETWEEN 0 AND 10 THEN nps END AS nps,
    CASE WHEN satisfaction BETWEEN 1 AND 5 THEN satisfaction END AS satisfaction
FROM typed
WHERE customer_id IS NOT NULL AND survey_ts IS NOT NULL
  AND customer_id IN (SELECT customer_id FROM stg_customers)""",
        f"""CREATE TABLE stg_campaigns AS
WITH typed AS (
    SELECT filename AS _source_file,
        nullif(trim(campaign_id), '') AS campaign_id,
        nullif(trim(name), '') AS name,
        nullif(lower(trim(channel)), '') AS channel,
        try_cast(nullif(trim(start_date), '') AS DATE) AS start_date,
        try_cast(nullif(trim(end_date), '') AS DATE) AS end_date,
        try_cast(nullif(trim(cost), '') AS DECIMAL(18, 4)) AS cost
    FROM {src['campaigns']}
)
SELECT campaign_id, name, channel, start_date, end_date, CASE WHEN cost >= 0 THEN cost END AS cost
FROM typed
WHERE campaign_id IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY campaign_id ORDER BY _source_file) = 1""",
        f"""CREATE TABLE stg_campaign_contacts AS
WITH typed AS (
    SELECT nullif(trim(campaign_id), '') AS campaign_id,
        nullif(trim(customer_id), '') AS customer_id,
        try_cast(nullif(trim(contacted_ts), '') AS TIMESTAMP) AS contacted_ts,
        try_cast(nullif(trim(responded_ts), '') AS TIMESTAMP) AS responded_ts,
        nullif(trim(converted_order_id), '') AS converted_order_id
    FROM {src['campaign_contacts']}
)
SELECT * FROM typed
WHERE campaign_id IS NOT NULL AND customer_id IS NOT NULL AND contacted_ts IS NOT NULL
  AND campaign_id IN (SELECT campaign_id FROM stg_campaigns)
  AND customer_id IN (SELECT customer_id FROM stg_customers)""",
    ]


def features_sql(as_of, period_start, prev_start, prev_end):
    """Intermediate stages and the two marts the models read, as in sql/."""
    a, ps = f"DATE '{as_of}'", f"DATE '{period_start}'"
    return [
        f"""CREATE TABLE int_order_lines AS
SELECT i.order_id, i.line_no, i.product_id, o.customer_id, o.order_date, o.status,
    p.category, p.price_tier, i.quantity,
    i.quantity * coalesce(i.unit_price, p.list_price) AS gross,
    i.discount,
    i.quantity * coalesce(i.unit_price, p.list_price) - i.discount AS net,
    i.quantity * i.unit_cost AS cost,
    i.quantity * p.list_price AS list_value,
    i.discount > 0 AS is_discounted,
    coalesce(p.price_tier = 'premium', false) AS is_premium,
    coalesce(p.launch_date <= o.order_date
             AND p.launch_date > o.order_date - INTERVAL '{NEW_PRODUCT_DAYS} days', false) AS is_new
FROM stg_order_items i
JOIN stg_orders o ON i.order_id = o.order_id
LEFT JOIN stg_products p ON i.product_id = p.product_id
WHERE o.order_date <= {a}""",
        f"""CREATE TABLE int_orders AS
WITH baskets AS (
    SELECT order_id, count(*) AS lines, sum(gross) AS gross, sum(net) AS net, sum(cost) AS cost
    FROM int_order_lines GROUP BY order_id
)
SELECT o.order_id, o.customer_id, o.order_ts, o.order_date, o.total_amount, o.status, o.channel,
    b.lines, b.gross, b.net, b.cost,
    CASE WHEN b.net > 0 AND b.cost IS NOT NULL
         THEN CAST(round(CAST(o.total_amount AS DOUBLE) * (1.0 - CAST(b.cost AS DOUBLE) / CAST(b.net AS DOUBLE)), 4) AS DECIMAL(18, 4))
    END AS margin
FROM stg_orders o LEFT JOIN baskets b ON o.order_id = b.order_id
WHERE o.order_date <= {a}""",
        f"""CREATE TABLE int_customer_orders AS
SELECT customer_id,
    min(CASE WHEN status = 'completed' THEN order_date END) AS first_order_date,
    max(CASE WHEN status = 'completed' THEN order_date END) AS last_order_date,
    sum(CASE WHEN status = 'completed' THEN 1 ELSE 0 END) AS orders,
    count(DISTINCT CASE WHEN status = 'completed' THEN order_date END) AS purchase_days,
    sum(CASE WHEN status = 'completed' THEN total_amount END) AS revenue,
    sum(CASE WHEN status = 'completed' THEN margin END) AS margin,
    sum(CASE WHEN status = 'completed' AND order_date >= {ps} THEN total_amount END) AS period_revenue,
    sum(CASE WHEN status = 'completed' AND order_date >= {ps} THEN 1 ELSE 0 END) AS period_orders,
    sum(CASE WHEN status = 'completed' AND order_date BETWEEN DATE '{prev_start}' AND DATE '{prev_end}'
             THEN 1 ELSE 0 END) AS previous_period_orders,
    max(CASE WHEN status = 'completed' AND order_date < {ps} THEN order_date END) AS last_order_before_period,
    sum(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END) AS cancelled_orders,
    sum(CASE WHEN status = 'returned' THEN 1 ELSE 0 END) AS returned_orders,
    sum(CASE WHEN status = 'completed' AND channel = 'online' THEN 1 ELSE 0 END) AS online_orders
FROM int_orders GROUP BY customer_id""",
        """CREATE TABLE int_customer_baskets AS
WITH lines AS (SELECT * FROM int_order_lines WHERE status = 'completed'),
spend AS (
    SELECT customer_id, sum(net) AS net_spend,
        CAST(coalesce(sum(CASE WHEN is_discounted THEN net END), 0) AS DOUBLE) / CAST(nullif(sum(net), 0) AS DOUBLE) AS discount_share,
        CAST(coalesce(sum(CASE WHEN is_premium THEN net END), 0) AS DOUBLE) / CAST(nullif(sum(net), 0) AS DOUBLE) AS premium_share,
        CAST(coalesce(sum(CASE WHEN is_new THEN net END), 0) AS DOUBLE) / CAST(nullif(sum(net), 0) AS DOUBLE) AS new_product_share,
        CAST(sum(net) AS DOUBLE) / CAST(nullif(sum(list_value), 0) AS DOUBLE) AS price_index,
        count(*) AS lines
    FROM lines GROUP BY customer_id
),
categories AS (
    SELECT customer_id, count(*) AS categories
    FROM (SELECT DISTINCT customer_id, category FROM lines WHERE category IS NOT NULL) AS d
    GROUP BY customer_id
)
SELECT s.*, coalesce(c.categories, 0) AS categories
FROM spend s LEFT JOIN categories c ON s.customer_id = c.customer_id""",
        f"""CREATE TABLE int_customer_campaigns AS
WITH per_campaign AS (
    SELECT campaign_id, count(*) AS contacts FROM stg_campaign_contacts GROUP BY campaign_id
),
contacts AS (
    SELECT c.customer_id,
        c.responded_ts IS NOT NULL AND CAST(c.responded_ts AS DATE) <= {a} AS responded,
        o.order_id IS NOT NULL AS converted,
        coalesce(o.total_amount, CAST(0 AS DECIMAL(18, 4))) AS attributed_revenue,
        CAST(k.cost / p.contacts AS DECIMAL(18, 6)) AS contact_cost
    FROM stg_campaign_contacts c
    JOIN per_campaign p ON c.campaign_id = p.campaign_id
    LEFT JOIN stg_campaigns k ON c.campaign_id = k.campaign_id
    LEFT JOIN int_orders o ON c.converted_order_id = o.order_id AND o.status = 'completed'
                          AND o.customer_id = c.customer_id
    WHERE CAST(c.contacted_ts AS DATE) <= {a}
)
SELECT customer_id, count(*) AS campaign_contacts,
    sum(CASE WHEN responded THEN 1 ELSE 0 END) AS campaign_responses,
    sum(CASE WHEN converted THEN 1 ELSE 0 END) AS campaign_conversions,
    sum(attributed_revenue) AS attributed_revenue,
    sum(contact_cost) AS contact_cost
FROM contacts GROUP BY customer_id""",
        f"""CREATE TABLE int_customer_service AS
WITH interactions AS (
    SELECT customer_id, count(*) AS interactions,
        sum(CASE WHEN type = 'complaint' THEN 1 ELSE 0 END) AS complaints,
        sum(satisfaction) AS satisfaction_sum, count(satisfaction) AS satisfaction_n
    FROM stg_interactions WHERE interaction_date <= {a} GROUP BY customer_id
),
answers AS (
    SELECT customer_id, nps, satisfaction,
        row_number() OVER (PARTITION BY customer_id ORDER BY survey_ts DESC, nps) AS recency_rank
    FROM stg_surveys WHERE CAST(survey_ts AS DATE) <= {a}
),
surveys AS (
    SELECT customer_id, max(CASE WHEN recency_rank = 1 THEN nps END) AS nps,
        sum(satisfaction) AS satisfaction_sum, count(satisfaction) AS satisfaction_n
    FROM answers GROUP BY customer_id
)
SELECT coalesce(i.customer_id, s.customer_id) AS customer_id,
    coalesce(i.interactions, 0) AS interactions,
    coalesce(i.complaints, 0) AS complaints,
    CAST(coalesce(i.satisfaction_sum, 0) + coalesce(s.satisfaction_sum, 0) AS DOUBLE)
        / nullif(coalesce(i.satisfaction_n, 0) + coalesce(s.satisfaction_n, 0), 0) AS avg_satisfaction,
    coalesce(i.satisfaction_sum, 0) + coalesce(s.satisfaction_sum, 0) AS satisfaction_sum,
    coalesce(i.satisfaction_n, 0) + coalesce(s.satisfaction_n, 0) AS satisfaction_n,
    s.nps
FROM interactions i FULL OUTER JOIN surveys s ON i.customer_id = s.customer_id""",
        f"""CREATE TABLE int_customers AS
WITH ordered AS (SELECT DISTINCT customer_id FROM int_orders),
known AS (SELECT *, floor(({a} - birth_date) / 365.25) AS age_years FROM stg_customers)
SELECT coalesce(k.customer_id, o.customer_id) AS customer_id,
    k.signup_date, k.gender, k.region, k.country, k.acquisition_channel, k.membership_tier,
    CASE WHEN k.birth_date IS NULL THEN NULL
         WHEN k.age_years < 18 THEN 'under 18' WHEN k.age_years < 25 THEN '18-24'
         WHEN k.age_years < 35 THEN '25-34' WHEN k.age_years < 45 THEN '35-44'
         WHEN k.age_years < 55 THEN '45-54' WHEN k.age_years < 65 THEN '55-64'
         ELSE '65+' END AS age_band,
    CASE WHEN k.annual_income IS NULL THEN NULL
         WHEN k.annual_income < 30000 THEN 'under 30k' WHEN k.annual_income < 60000 THEN '30k-60k'
         WHEN k.annual_income < 100000 THEN '60k-100k' ELSE '100k+' END AS income_band
FROM known k FULL OUTER JOIN ordered o ON k.customer_id = o.customer_id
WHERE o.customer_id IS NOT NULL OR k.signup_date IS NULL OR k.signup_date <= {a}""",
        f"""CREATE TABLE clv_summary AS
WITH purchase_days AS (
    SELECT customer_id, order_date, sum(total_amount) AS amount, sum(margin) AS margin
    FROM int_orders WHERE status = 'completed' GROUP BY customer_id, order_date
),
firsts AS (SELECT customer_id, min(order_date) AS first_day FROM purchase_days GROUP BY customer_id)
SELECT d.customer_id,
    count(*) - 1 AS frequency,
    max(d.order_date) - f.first_day AS recency_days,
    {a} - f.first_day AS age_days,
    CAST(sum(CASE WHEN d.order_date > f.first_day THEN d.amount END) AS DOUBLE) / nullif(count(*) - 1, 0) AS monetary_value,
    sum(d.amount) AS total_amount
FROM purchase_days d JOIN firsts f ON d.customer_id = f.customer_id
GROUP BY d.customer_id, f.first_day""",
        f"""CREATE TABLE customer_features AS
SELECT c.customer_id, {a} AS as_of, o.first_order_date, o.last_order_date,
    {a} - o.last_order_date AS recency_days,
    CASE WHEN o.purchase_days > 0 THEN o.purchase_days - 1 ELSE 0 END AS frequency,
    coalesce(o.orders, 0) AS orders,
    coalesce(o.revenue, CAST(0 AS DECIMAL(18, 4))) AS revenue,
    coalesce(o.margin, CASE WHEN coalesce(o.orders, 0) = 0 THEN CAST(0 AS DECIMAL(18, 4)) END) AS margin,
    CAST(o.revenue AS DOUBLE) / nullif(o.orders, 0) AS avg_order_value,
    {a} - coalesce(c.signup_date, o.first_order_date) AS tenure_days,
    b.discount_share, b.premium_share, b.new_product_share, b.price_index,
    coalesce(b.categories, 0) AS categories,
    coalesce(s.complaints, 0) AS complaints,
    coalesce(s.interactions, 0) AS interactions,
    s.avg_satisfaction, s.nps,
    coalesce(k.campaign_contacts, 0) AS campaign_contacts,
    coalesce(k.campaign_responses, 0) AS campaign_responses,
    coalesce(k.campaign_conversions, 0) AS campaign_conversions,
    coalesce(k.attributed_revenue, CAST(0 AS DECIMAL(18, 4))) AS attributed_revenue,
    coalesce(o.period_orders, 0) AS period_orders,
    coalesce(o.period_revenue, CAST(0 AS DECIMAL(18, 4))) AS period_revenue,
    coalesce(o.previous_period_orders, 0) AS previous_period_orders,
    c.age_band, c.income_band, c.gender, c.region, c.acquisition_channel, c.membership_tier
FROM int_customers c
LEFT JOIN int_customer_orders o ON c.customer_id = o.customer_id
LEFT JOIN int_customer_baskets b ON c.customer_id = b.customer_id
LEFT JOIN int_customer_service s ON c.customer_id = s.customer_id
LEFT JOIN int_customer_campaigns k ON c.customer_id = k.customer_id""",
    ]


def period_bounds(period):
    y, m = (int(v) for v in period.split("-"))
    start = dt.date(y, m, 1)
    end = dt.date(y, m, calendar.monthrange(y, m)[1])
    prev_end = start - dt.timedelta(days=1)
    prev_start = prev_end.replace(day=1)
    return end, start, prev_start, prev_end


class Stages:
    """Times stages: wall, CPU (all threads) and the peak RSS of each."""

    def __init__(self):
        self.steps = []

    @staticmethod
    def _reset_peak():
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass

    @staticmethod
    def _peak_mib():
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def run(self, name, fn, rows=None):
        self._reset_peak()
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        n = rows(out) if rows else None
        self.steps.append({"name": name, "seconds": wall, "cpu_seconds": cpu,
                           "peak_rss_mib": self._peak_mib(), "rows": n})
        print(f"peer {name:<14} {wall:8.2f} s wall {cpu:8.2f} s cpu {self.steps[-1]['peak_rss_mib']:8.0f} MiB"
              + (f" {n:>12,} rows" if n is not None else ""), file=sys.stderr)
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--period", default="2024-12")
    ap.add_argument("--k", type=int, default=6, help="k-means clusters")
    ap.add_argument("--export-model-inputs", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    st = Stages()
    t_start = time.perf_counter()

    def imports():
        global duckdb, np, pd, BetaGeoFitter, GammaGammaFitter, KMeans, StandardScaler
        import duckdb
        import numpy as np
        import pandas as pd
        from lifetimes import BetaGeoFitter, GammaGammaFitter
        from sklearn.cluster import KMeans
        from sklearn.preprocessing import StandardScaler

    st.run("imports", imports)
    as_of, pstart, prev_start, prev_end = period_bounds(args.period)
    con = duckdb.connect()

    def count(table):
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def staging():
        for q in staging_sql(args.raw):
            con.execute(q)
        return count("stg_orders") + count("stg_order_items") + count("stg_customers")

    st.run("sql_staging", staging, rows=lambda n: n)

    def features():
        for q in features_sql(as_of, pstart, prev_start, prev_end):
            con.execute(q)
        feats = con.execute("SELECT * FROM customer_features").df()
        summ = con.execute("SELECT customer_id, frequency, recency_days, age_days, monetary_value FROM clv_summary").df()
        return feats, summ

    feats, summ = st.run("sql_features", features, rows=lambda o: len(o[0]))

    # --- CLV: lifetimes BG/NBD + Gamma-Gamma on every customer with a purchase ---------------
    x = summ["frequency"].astype(float)
    t_x = summ["recency_days"].astype(float) / DAYS_PER_UNIT
    big_t = summ["age_days"].astype(float) / DAYS_PER_UNIT
    money = summ["monetary_value"].astype(float)
    if args.export_model_inputs:
        # Not part of the peer's work: the report subtracts this stage from the peer's total.
        def export():
            pd.DataFrame({"frequency": x, "recency": t_x, "T": big_t, "monetary_value": money.fillna(0.0)}).to_csv(
                os.path.join(args.out, "clv_summary.csv"), index=False, float_format="%.17g")
            feats.loc[feats["orders"] > 0, ["customer_id", "recency_days", "orders", "revenue"]].to_csv(
                os.path.join(args.out, "rfm_inputs.csv"), index=False, float_format="%.17g")

        st.run("export_model_inputs", export)

    def clv_fit():
        bgf = BetaGeoFitter().fit(x, t_x, big_t)
        rep = x > 0
        ggf = GammaGammaFitter().fit(x[rep], money[rep])
        return bgf, ggf

    bgf, ggf = st.run("clv_fit", clv_fit, rows=lambda _: len(x))

    def clv_score():
        n_steps = int(np.ceil(HORIZON_DAYS / STEP_DAYS - 1e-9))
        days = np.minimum(np.arange(1, n_steps + 1) * STEP_DAYS, HORIZON_DAYS)
        disc = (1.0 + ANNUAL_DISCOUNT) ** (-days / 365.25)
        prev = np.zeros(len(x))
        dep = np.zeros(len(x))
        for d, f in zip(days, disc):
            e = np.asarray(bgf.conditional_expected_number_of_purchases_up_to_time(d / DAYS_PER_UNIT, x, t_x, big_t))
            dep += (e - prev) * f
            prev = e
        spend = np.asarray(ggf.conditional_expected_average_profit(x, money.where(x > 0, 0.0)))
        return pd.DataFrame({
            "customer_id": summ["customer_id"],
            "p_alive": np.asarray(bgf.conditional_probability_alive(x, t_x, big_t)),
            "expected_purchases": prev,
            "expected_avg_order_value": spend,
            "clv": spend * dep,
        })

    value = st.run("clv_score", clv_score, rows=len)

    # --- RFM quintiles (pandas), ties share the score of their average rank ------------------
    def rfm():
        b = feats.loc[feats["orders"] > 0, ["customer_id", "recency_days", "orders", "revenue"]]
        n = len(b)

        def score(s):
            r = s.rank(method="average")
            return np.clip(np.ceil((r - 0.5) / n * RFM_BINS), 1, RFM_BINS).astype(int)

        r = score(-b["recency_days"].astype(float))
        f = score(b["orders"].astype(float))
        m = score(b["revenue"].astype(float))
        conds = [(r.between(*rr)) & (f.between(*fr)) & (m.between(*mr)) for _, rr, fr, mr in RFM_RULES]
        seg = np.select(conds, [name for name, *_ in RFM_RULES], default="Others")
        return pd.DataFrame({"customer_id": b["customer_id"], "rfm_r": r, "rfm_f": f, "rfm_m": m,
                             "rfm_score": r.astype(str) + f.astype(str) + m.astype(str),
                             "rfm_segment": seg})

    seg = st.run("rfm", rfm, rows=len)

    # --- k-means on standardised behavioural features of buyers ------------------------------
    def kmeans():
        b = feats.loc[feats["orders"] > 0]
        xs = StandardScaler().fit_transform(b[KMEANS_FEATURES].astype(float).fillna(0.0).to_numpy())
        km = KMeans(n_clusters=args.k, random_state=0, n_init=1).fit(xs)
        return pd.DataFrame({"customer_id": b["customer_id"].to_numpy(), "cluster": km.labels_})

    clusters = st.run("kmeans", kmeans, rows=len)

    # --- outputs ----------------------------------------------------------------------------
    def write():
        segs = seg.merge(clusters, on="customer_id", how="outer")
        con.register("value_df", value)
        con.register("segments_df", segs)
        for table, src in [("customer_features", "customer_features"), ("customer_value", "value_df"),
                           ("customer_segments", "segments_df")]:
            path = os.path.join(args.out, f"{table}.parquet")
            con.execute(f"COPY (SELECT * FROM {src} ORDER BY customer_id) TO '{path}' (FORMAT parquet)")
        return len(feats) + len(value) + len(segs)

    st.run("write", write, rows=lambda n: n)

    total = time.perf_counter() - t_start - sum(s["seconds"] for s in st.steps if s["name"] == "export_model_inputs")
    result = {
        "tool": "peer", "versions": {"duckdb": duckdb.__version__, "lifetimes": __import__("lifetimes").__version__,
                                     "pandas": pd.__version__, "numpy": np.__version__,
                                     "sklearn": __import__("sklearn").__version__},
        "period": args.period, "seconds": total, "steps": st.steps,
        "bgnbd": {k: float(v) for k, v in bgf.params_.items()},
        "gamma_gamma": {k: float(v) for k, v in ggf.params_.items()},
        "k": args.k,
    }
    path = os.path.join(args.out, "peer_results.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps({"seconds": total, "peer_results": path}))


if __name__ == "__main__":
    main()
