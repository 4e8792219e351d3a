-- DuckDB views over a warehouse written with `table_format: delta`: one per Delta table, every
-- period (`period` is the table's partition column), through DuckDB's `delta` extension
-- (delta_scan reads the Delta log, so replaced files awaiting a vacuum are never read).
--   INSTALL delta; LOAD delta;
--   SET VARIABLE warehouse = 'demo/warehouse';
--   .read infra/bi/duckdb/views_delta.sql
-- The queries next to this file then run unchanged. Time travel is not in delta_scan: read an
-- older version with the Python `deltalake` package (DeltaTable(uri, version=N)) or Spark.

CREATE OR REPLACE VIEW customer_features AS
SELECT * FROM delta_scan(getvariable('warehouse') || '/customer_features');

CREATE OR REPLACE VIEW customer_value AS
SELECT * FROM delta_scan(getvariable('warehouse') || '/customer_value');

CREATE OR REPLACE VIEW customer_segments AS
SELECT * FROM delta_scan(getvariable('warehouse') || '/customer_segments');

CREATE OR REPLACE VIEW segment_summary AS
SELECT * FROM delta_scan(getvariable('warehouse') || '/segment_summary');

CREATE OR REPLACE VIEW value_concentration AS
SELECT * FROM delta_scan(getvariable('warehouse') || '/value_concentration');

CREATE OR REPLACE VIEW clv_model AS
SELECT * FROM delta_scan(getvariable('warehouse') || '/clv_model');

CREATE OR REPLACE VIEW positioning AS
SELECT * FROM delta_scan(getvariable('warehouse') || '/positioning');

CREATE OR REPLACE VIEW segment_migration AS
SELECT * FROM delta_scan(getvariable('warehouse') || '/segment_migration');
