-- DuckDB views over the warehouse: one per table, every period, `period` as a column (from the
-- Hive partition folder, kept as text so '2024-06', '2024-Q2' and '2024' all work).
-- Set the warehouse first (a local path or s3://..., gs://..., az://... with DuckDB's httpfs):
--   SET VARIABLE warehouse = 'demo/warehouse';
--   .read infra/bi/duckdb/views.sql
-- Tables a warehouse does not have yet (e.g. positioning before its first run) fail at query
-- time, not here.

CREATE OR REPLACE VIEW customer_features AS
SELECT * FROM read_parquet(getvariable('warehouse') || '/customer_features/*/*.parquet',
                           hive_partitioning = true, hive_types = {'period': 'VARCHAR'});

CREATE OR REPLACE VIEW customer_value AS
SELECT * FROM read_parquet(getvariable('warehouse') || '/customer_value/*/*.parquet',
                           hive_partitioning = true, hive_types = {'period': 'VARCHAR'});

CREATE OR REPLACE VIEW customer_segments AS
SELECT * FROM read_parquet(getvariable('warehouse') || '/customer_segments/*/*.parquet',
                           hive_partitioning = true, hive_types = {'period': 'VARCHAR'},
                           union_by_name = true);

CREATE OR REPLACE VIEW segment_summary AS
SELECT * FROM read_parquet(getvariable('warehouse') || '/segment_summary/*/*.parquet',
                           hive_partitioning = true, hive_types = {'period': 'VARCHAR'});

CREATE OR REPLACE VIEW value_concentration AS
SELECT * FROM read_parquet(getvariable('warehouse') || '/value_concentration/*/*.parquet',
                           hive_partitioning = true, hive_types = {'period': 'VARCHAR'});

CREATE OR REPLACE VIEW clv_model AS
SELECT * FROM read_parquet(getvariable('warehouse') || '/clv_model/*/*.parquet',
                           hive_partitioning = true, hive_types = {'period': 'VARCHAR'});

CREATE OR REPLACE VIEW positioning AS
SELECT * FROM read_parquet(getvariable('warehouse') || '/positioning/*/*.parquet',
                           hive_partitioning = true, hive_types = {'period': 'VARCHAR'});

CREATE OR REPLACE VIEW segment_migration AS
SELECT * FROM read_parquet(getvariable('warehouse') || '/segment_migration/*/*.parquet',
                           hive_partitioning = true, hive_types = {'period': 'VARCHAR'});
