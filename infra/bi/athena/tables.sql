-- Athena (Glue catalog) external tables over the warehouse, one per output, partitioned by
-- period with partition projection (no MSCK REPAIR after each run). Column types are
-- pipeline.yaml's `outputs.<table>.columns`; every row also has run_id. Replace
-- s3://my-bucket/warehouse with your warehouse; widen the projected period range as needed.
-- For a quarter or year grain, change projection.period.* accordingly (or drop projection
-- and run MSCK REPAIR TABLE <table> after each run).

CREATE DATABASE IF NOT EXISTS crm;

CREATE EXTERNAL TABLE IF NOT EXISTS crm.customer_features (
    `customer_id`            string,
    `as_of`                  date,
    `first_order_date`       date,
    `last_order_date`        date,
    `recency_days`           int,
    `frequency`              bigint,
    `orders`                 bigint,
    `revenue`                double,
    `margin`                 double,
    `avg_order_value`        double,
    `tenure_days`            int,
    `discount_share`         double,
    `premium_share`          double,
    `new_product_share`      double,
    `discount_line_share`    double,
    `premium_line_share`     double,
    `new_product_line_share` double,
    `price_index`            double,
    `categories`             bigint,
    `complaints`             bigint,
    `interactions`           bigint,
    `avg_satisfaction`       double,
    `nps`                    bigint,
    `campaign_contacts`      bigint,
    `campaign_responses`     bigint,
    `campaign_conversions`   bigint,
    `attributed_revenue`     double,
    `period_orders`          bigint,
    `period_revenue`         double,
    `previous_period_orders` bigint,
    `age_band`               string,
    `income_band`            string,
    `gender`                 string,
    `region`                 string,
    `acquisition_channel`    string,
    `membership_tier`        string,
    `run_id`                 string
)
PARTITIONED BY (`period` string)
STORED AS PARQUET
LOCATION 's3://my-bucket/warehouse/customer_features/'
TBLPROPERTIES (
    'projection.enabled' = 'true',
    'projection.period.type' = 'date',
    'projection.period.format' = 'yyyy-MM',
    'projection.period.range' = '2020-01,NOW',
    'projection.period.interval' = '1',
    'projection.period.interval.unit' = 'MONTHS',
    'storage.location.template' = 's3://my-bucket/warehouse/customer_features/period=${period}/'
);

CREATE EXTERNAL TABLE IF NOT EXISTS crm.customer_value (
    `customer_id`              string,
    `historical_revenue`       double,
    `historical_margin`        double,
    `frequency`                double,
    `recency`                  double,
    `age`                      double,
    `p_alive`                  double,
    `expected_purchases`       double,
    `expected_avg_order_value` double,
    `clv`                      double,
    `clv_horizon_days`         int,
    `clv_decile`               int,
    `days_to_next_purchase`    double,
    `clv_method`               string,
    `run_id`                   string
)
PARTITIONED BY (`period` string)
STORED AS PARQUET
LOCATION 's3://my-bucket/warehouse/customer_value/'
TBLPROPERTIES (
    'projection.enabled' = 'true',
    'projection.period.type' = 'date',
    'projection.period.format' = 'yyyy-MM',
    'projection.period.range' = '2020-01,NOW',
    'projection.period.interval' = '1',
    'projection.period.interval.unit' = 'MONTHS',
    'storage.location.template' = 's3://my-bucket/warehouse/customer_value/period=${period}/'
);

CREATE EXTERNAL TABLE IF NOT EXISTS crm.clv_model (
    `model`                   string,
    `r`                       double,
    `alpha`                   double,
    `a`                       double,
    `b`                       double,
    `p`                       double,
    `q`                       double,
    `gamma`                   double,
    `r_se`                    double,
    `alpha_se`                double,
    `a_se`                    double,
    `b_se`                    double,
    `p_se`                    double,
    `q_se`                    double,
    `gamma_se`                double,
    `log_likelihood`          double,
    `customers_fitted`        bigint,
    `converged`               boolean,
    `iterations`              bigint,
    `time_unit`               string,
    `reason`                  string,
    `holdout_mae`             double,
    `holdout_aggregate_error` double,
    `holdout_customers`       bigint,
    `holdout_calibration`     string,
    `run_id`                  string
)
PARTITIONED BY (`period` string)
STORED AS PARQUET
LOCATION 's3://my-bucket/warehouse/clv_model/'
TBLPROPERTIES (
    'projection.enabled' = 'true',
    'projection.period.type' = 'date',
    'projection.period.format' = 'yyyy-MM',
    'projection.period.range' = '2020-01,NOW',
    'projection.period.interval' = '1',
    'projection.period.interval.unit' = 'MONTHS',
    'storage.location.template' = 's3://my-bucket/warehouse/clv_model/period=${period}/'
);

CREATE EXTERNAL TABLE IF NOT EXISTS crm.customer_segments (
    `customer_id`         string,
    `rfm_r`               int,
    `rfm_f`               int,
    `rfm_m`               int,
    `rfm_score`           string,
    `rfm_segment`         string,
    `rfm8_code`           string,
    `rfm8_segment`        string,
    `rfm8_r_cutoff`       double,
    `rfm8_f_cutoff`       double,
    `rfm8_m_cutoff`       double,
    `value_tier`          string,
    `current_value_class` string,
    `lifecycle_stage`     string,
    `usage_rate`          double,
    `usage_tier`          string,
    `preference_type`     string,
    `value_loyalty_code`  string,
    `value_loyalty_class` string,
    `cluster_id`          int,
    `cluster_label`       string,
    `unclassified_reason` string,
    `run_id`              string
)
PARTITIONED BY (`period` string)
STORED AS PARQUET
LOCATION 's3://my-bucket/warehouse/customer_segments/'
TBLPROPERTIES (
    'projection.enabled' = 'true',
    'projection.period.type' = 'date',
    'projection.period.format' = 'yyyy-MM',
    'projection.period.range' = '2020-01,NOW',
    'projection.period.interval' = '1',
    'projection.period.interval.unit' = 'MONTHS',
    'storage.location.template' = 's3://my-bucket/warehouse/customer_segments/period=${period}/'
);

CREATE EXTERNAL TABLE IF NOT EXISTS crm.segment_summary (
    `scheme`                    string,
    `segment`                   string,
    `customers`                 bigint,
    `customer_share`            double,
    `revenue`                   double,
    `revenue_share`             double,
    `margin_share`              double,
    `margin`                    double,
    `avg_margin`                double,
    `avg_price_index`           double,
    `period_revenue`            double,
    `avg_clv`                   double,
    `median_clv`                double,
    `avg_order_value`           double,
    `repeat_purchase_rate`      double,
    `retention_rate`            double,
    `complaint_rate`            double,
    `avg_satisfaction`          double,
    `nps`                       double,
    `response_rate`             double,
    `conversion_rate`           double,
    `marketing_roi`             double,
    `interactions_per_customer` double,
    `previous_customers`        bigint,
    `growth_vs_previous`        double,
    `stability`                 double,
    `clv_change`                double,
    `top_categories`            string,
    `channel_mix`               string,
    `dominant_age_band`         string,
    `dominant_region`           string,
    `run_id`                    string
)
PARTITIONED BY (`period` string)
STORED AS PARQUET
LOCATION 's3://my-bucket/warehouse/segment_summary/'
TBLPROPERTIES (
    'projection.enabled' = 'true',
    'projection.period.type' = 'date',
    'projection.period.format' = 'yyyy-MM',
    'projection.period.range' = '2020-01,NOW',
    'projection.period.interval' = '1',
    'projection.period.interval.unit' = 'MONTHS',
    'storage.location.template' = 's3://my-bucket/warehouse/segment_summary/period=${period}/'
);

CREATE EXTERNAL TABLE IF NOT EXISTS crm.positioning (
    `scheme`              string,
    `segment`             string,
    `customers`           bigint,
    `x_axis`              string,
    `x_value`             double,
    `y_axis`              string,
    `y_value`             double,
    `size_score`          double,
    `growth_score`        double,
    `profitability_score` double,
    `distinctness_score`  double,
    `response_score`      double,
    `attractiveness`      double,
    `is_target`           boolean,
    `target_rank`         int,
    `product_strategy`    string,
    `price_strategy`      string,
    `channel_strategy`    string,
    `promotion_strategy`  string,
    `action`              string,
    `note`                string,
    `run_id`              string
)
PARTITIONED BY (`period` string)
STORED AS PARQUET
LOCATION 's3://my-bucket/warehouse/positioning/'
TBLPROPERTIES (
    'projection.enabled' = 'true',
    'projection.period.type' = 'date',
    'projection.period.format' = 'yyyy-MM',
    'projection.period.range' = '2020-01,NOW',
    'projection.period.interval' = '1',
    'projection.period.interval.unit' = 'MONTHS',
    'storage.location.template' = 's3://my-bucket/warehouse/positioning/period=${period}/'
);

CREATE EXTERNAL TABLE IF NOT EXISTS crm.segment_migration (
    `scheme`        string,
    `from_segment`  string,
    `to_segment`    string,
    `customers`     bigint,
    `share_of_from` double,
    `stayed`        boolean,
    `run_id`        string
)
PARTITIONED BY (`period` string)
STORED AS PARQUET
LOCATION 's3://my-bucket/warehouse/segment_migration/'
TBLPROPERTIES (
    'projection.enabled' = 'true',
    'projection.period.type' = 'date',
    'projection.period.format' = 'yyyy-MM',
    'projection.period.range' = '2020-01,NOW',
    'projection.period.interval' = '1',
    'projection.period.interval.unit' = 'MONTHS',
    'storage.location.template' = 's3://my-bucket/warehouse/segment_migration/period=${period}/'
);

CREATE EXTERNAL TABLE IF NOT EXISTS crm.value_concentration (
    `customers`                 bigint,
    `top20_revenue_share`       double,
    `top20_margin_share`        double,
    `negative_margin_customers` bigint,
    `negative_margin_total`     double,
    `gini_revenue`              double,
    `run_id`                    string
)
PARTITIONED BY (`period` string)
STORED AS PARQUET
LOCATION 's3://my-bucket/warehouse/value_concentration/'
TBLPROPERTIES (
    'projection.enabled' = 'true',
    'projection.period.type' = 'date',
    'projection.period.format' = 'yyyy-MM',
    'projection.period.range' = '2020-01,NOW',
    'projection.period.interval' = '1',
    'projection.period.interval.unit' = 'MONTHS',
    'storage.location.template' = 's3://my-bucket/warehouse/value_concentration/period=${period}/'
);

CREATE EXTERNAL TABLE IF NOT EXISTS crm.quarantine (
    `source`     string,
    `reason`     string,
    `file`       string,
    `row_number` bigint,
    `raw`        string,
    `run_id`     string
)
PARTITIONED BY (`period` string)
STORED AS PARQUET
LOCATION 's3://my-bucket/warehouse/quarantine/'
TBLPROPERTIES (
    'projection.enabled' = 'true',
    'projection.period.type' = 'date',
    'projection.period.format' = 'yyyy-MM',
    'projection.period.range' = '2020-01,NOW',
    'projection.period.interval' = '1',
    'projection.period.interval.unit' = 'MONTHS',
    'storage.location.template' = 's3://my-bucket/warehouse/quarantine/period=${period}/'
);
