-- Trino (Hive connector) tables over the warehouse: one external table per output, partitioned
-- by period. Column types are pipeline.yaml's `outputs.<table>.columns` (string -> varchar,
-- float64 -> double, int64 -> bigint, int32 -> integer); every row also has run_id.
-- Replace s3://my-bucket/warehouse with your warehouse and `hive` with your catalog.

CREATE SCHEMA IF NOT EXISTS hive.crm WITH (location = 's3://my-bucket/warehouse/');

CREATE TABLE IF NOT EXISTS hive.crm.customer_features (
    customer_id            varchar,
    as_of                  date,
    first_order_date       date,
    last_order_date        date,
    recency_days           integer,
    frequency              bigint,
    orders                 bigint,
    revenue                double,
    margin                 double,
    avg_order_value        double,
    tenure_days            integer,
    discount_share         double,
    premium_share          double,
    new_product_share      double,
    discount_line_share    double,
    premium_line_share     double,
    new_product_line_share double,
    price_index            double,
    categories             bigint,
    complaints             bigint,
    interactions           bigint,
    avg_satisfaction       double,
    nps                    bigint,
    campaign_contacts      bigint,
    campaign_responses     bigint,
    campaign_conversions   bigint,
    attributed_revenue     double,
    period_orders          bigint,
    period_revenue         double,
    previous_period_orders bigint,
    age_band               varchar,
    income_band            varchar,
    gender                 varchar,
    region                 varchar,
    acquisition_channel    varchar,
    membership_tier        varchar,
    run_id                 varchar,
    period                 varchar
) WITH (
    external_location = 's3://my-bucket/warehouse/customer_features/',
    format = 'PARQUET',
    partitioned_by = ARRAY['period']
);
CALL hive.system.sync_partition_metadata('crm', 'customer_features', 'ADD');

CREATE TABLE IF NOT EXISTS hive.crm.customer_value (
    customer_id              varchar,
    historical_revenue       double,
    historical_margin        double,
    frequency                double,
    recency                  double,
    age                      double,
    p_alive                  double,
    expected_purchases       double,
    expected_avg_order_value double,
    clv                      double,
    clv_horizon_days         integer,
    clv_decile               integer,
    days_to_next_purchase    double,
    clv_method               varchar,
    run_id                   varchar,
    period                   varchar
) WITH (
    external_location = 's3://my-bucket/warehouse/customer_value/',
    format = 'PARQUET',
    partitioned_by = ARRAY['period']
);
CALL hive.system.sync_partition_metadata('crm', 'customer_value', 'ADD');

CREATE TABLE IF NOT EXISTS hive.crm.clv_model (
    model                   varchar,
    r                       double,
    alpha                   double,
    a                       double,
    b                       double,
    p                       double,
    q                       double,
    gamma                   double,
    r_se                    double,
    alpha_se                double,
    a_se                    double,
    b_se                    double,
    p_se                    double,
    q_se                    double,
    gamma_se                double,
    log_likelihood          double,
    customers_fitted        bigint,
    converged               boolean,
    iterations              bigint,
    time_unit               varchar,
    reason                  varchar,
    holdout_mae             double,
    holdout_aggregate_error double,
    holdout_customers       bigint,
    holdout_calibration     varchar,
    run_id                  varchar,
    period                  varchar
) WITH (
    external_location = 's3://my-bucket/warehouse/clv_model/',
    format = 'PARQUET',
    partitioned_by = ARRAY['period']
);
CALL hive.system.sync_partition_metadata('crm', 'clv_model', 'ADD');

CREATE TABLE IF NOT EXISTS hive.crm.customer_segments (
    customer_id         varchar,
    rfm_r               integer,
    rfm_f               integer,
    rfm_m               integer,
    rfm_score           varchar,
    rfm_segment         varchar,
    rfm8_code           varchar,
    rfm8_segment        varchar,
    rfm8_r_cutoff       double,
    rfm8_f_cutoff       double,
    rfm8_m_cutoff       double,
    value_tier          varchar,
    current_value_class varchar,
    lifecycle_stage     varchar,
    usage_rate          double,
    usage_tier          varchar,
    preference_type     varchar,
    value_loyalty_code  varchar,
    value_loyalty_class varchar,
    cluster_id          integer,
    cluster_label       varchar,
    unclassified_reason varchar,
    run_id              varchar,
    period              varchar
) WITH (
    external_location = 's3://my-bucket/warehouse/customer_segments/',
    format = 'PARQUET',
    partitioned_by = ARRAY['period']
);
CALL hive.system.sync_partition_metadata('crm', 'customer_segments', 'ADD');

CREATE TABLE IF NOT EXISTS hive.crm.segment_summary (
    scheme                    varchar,
    segment                   varchar,
    customers                 bigint,
    customer_share            double,
    revenue                   double,
    revenue_share             double,
    margin_share              double,
    margin                    double,
    avg_margin                double,
    avg_price_index           double,
    period_revenue            double,
    avg_clv                   double,
    median_clv                double,
    avg_order_value           double,
    repeat_purchase_rate      double,
    retention_rate            double,
    complaint_rate            double,
    avg_satisfaction          double,
    nps                       double,
    response_rate             double,
    conversion_rate           double,
    marketing_roi             double,
    interactions_per_customer double,
    previous_customers        bigint,
    growth_vs_previous        double,
    stability                 double,
    clv_change                double,
    top_categories            varchar,
    channel_mix               varchar,
    dominant_age_band         varchar,
    dominant_region           varchar,
    run_id                    varchar,
    period                    varchar
) WITH (
    external_location = 's3://my-bucket/warehouse/segment_summary/',
    format = 'PARQUET',
    partitioned_by = ARRAY['period']
);
CALL hive.system.sync_partition_metadata('crm', 'segment_summary', 'ADD');

CREATE TABLE IF NOT EXISTS hive.crm.positioning (
    scheme              varchar,
    segment             varchar,
    customers           bigint,
    x_axis              varchar,
    x_value             double,
    y_axis              varchar,
    y_value             double,
    size_score          double,
    growth_score        double,
    profitability_score double,
    distinctness_score  double,
    response_score      double,
    attractiveness      double,
    is_target           boolean,
    target_rank         integer,
    product_strategy    varchar,
    price_strategy      varchar,
    channel_strategy    varchar,
    promotion_strategy  varchar,
    action              varchar,
    note                varchar,
    run_id              varchar,
    period              varchar
) WITH (
    external_location = 's3://my-bucket/warehouse/positioning/',
    format = 'PARQUET',
    partitioned_by = ARRAY['period']
);
CALL hive.system.sync_partition_metadata('crm', 'positioning', 'ADD');

CREATE TABLE IF NOT EXISTS hive.crm.segment_migration (
    scheme        varchar,
    from_segment  varchar,
    to_segment    varchar,
    customers     bigint,
    share_of_from double,
    stayed        boolean,
    run_id        varchar,
    period        varchar
) WITH (
    external_location = 's3://my-bucket/warehouse/segment_migration/',
    format = 'PARQUET',
    partitioned_by = ARRAY['period']
);
CALL hive.system.sync_partition_metadata('crm', 'segment_migration', 'ADD');

CREATE TABLE IF NOT EXISTS hive.crm.value_concentration (
    customers                 bigint,
    top20_revenue_share       double,
    top20_margin_share        double,
    negative_margin_customers bigint,
    negative_margin_total     double,
    gini_revenue              double,
    run_id                    varchar,
    period                    varchar
) WITH (
    external_location = 's3://my-bucket/warehouse/value_concentration/',
    format = 'PARQUET',
    partitioned_by = ARRAY['period']
);
CALL hive.system.sync_partition_metadata('crm', 'value_concentration', 'ADD');

CREATE TABLE IF NOT EXISTS hive.crm.quarantine (
    source     varchar,
    reason     varchar,
    file       varchar,
    row_number bigint,
    raw        varchar,
    run_id     varchar,
    period     varchar
) WITH (
    external_location = 's3://my-bucket/warehouse/quarantine/',
    format = 'PARQUET',
    partitioned_by = ARRAY['period']
);
CALL hive.system.sync_partition_metadata('crm', 'quarantine', 'ADD');
