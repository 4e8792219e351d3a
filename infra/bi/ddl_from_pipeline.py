"""Writes trino/tables.sql and athena/tables.sql from pipeline.yaml's outputs (run it after
changing an output's columns): python3 infra/bi/ddl_from_pipeline.py (needs PyYAML)."""
import pathlib

import yaml

HERE = pathlib.Path(__file__).resolve().parent
cfg = yaml.safe_load(open(HERE.parent.parent / 'pipeline.yaml'))
outs = {k: v['columns'] for k, v in cfg['outputs'].items()}
trino = dict(string='varchar', float64='double', int64='bigint', int32='integer', boolean='boolean', date='date')
athena = dict(string='string', float64='double', int64='bigint', int32='int', boolean='boolean', date='date')
T = ["-- Trino (Hive connector) tables over the warehouse: one external table per output, partitioned",
     "-- by period. Column types are pipeline.yaml's `outputs.<table>.columns` (string -> varchar,",
     "-- float64 -> double, int64 -> bigint, int32 -> integer); every row also has run_id.",
     "-- Replace s3://my-bucket/warehouse with your warehouse and `hive` with your catalog.",
     "",
     "CREATE SCHEMA IF NOT EXISTS hive.crm WITH (location = 's3://my-bucket/warehouse/');", ""]
A = ["-- Athena (Glue catalog) external tables over the warehouse, one per output, partitioned by",
     "-- period with partition projection (no MSCK REPAIR after each run). Column types are",
     "-- pipeline.yaml's `outputs.<table>.columns`; every row also has run_id. Replace",
     "-- s3://my-bucket/warehouse with your warehouse; widen the projected period range as needed.",
     "-- For a quarter or year grain, change projection.period.* accordingly (or drop projection",
     "-- and run MSCK REPAIR TABLE <table> after each run).",
     "",
     "CREATE DATABASE IF NOT EXISTS crm;", ""]
for t, cols in outs.items():
    cols = dict(cols); cols['run_id'] = 'string'
    w = max(len(c) for c in cols) + 1
    T.append(f"CREATE TABLE IF NOT EXISTS hive.crm.{t} (")
    T += [f"    {c.ljust(w)}{trino[ty]}," for c, ty in cols.items()]
    T.append(f"    {'period'.ljust(w)}varchar")
    T.append(") WITH (")
    T.append(f"    external_location = 's3://my-bucket/warehouse/{t}/',")
    T.append("    format = 'PARQUET',")
    T.append("    partitioned_by = ARRAY['period']")
    T.append(");")
    T.append(f"CALL hive.system.sync_partition_metadata('crm', '{t}', 'ADD');")
    T.append("")
    A.append(f"CREATE EXTERNAL TABLE IF NOT EXISTS crm.{t} (")
    body = [f"    `{c}`{' ' * (w - len(c))}{athena[ty]}" for c, ty in cols.items()]
    A.append(",\n".join(body))
    A.append(")")
    A.append("PARTITIONED BY (`period` string)")
    A.append("STORED AS PARQUET")
    A.append(f"LOCATION 's3://my-bucket/warehouse/{t}/'")
    A.append("TBLPROPERTIES (")
    A.append("    'projection.enabled' = 'true',")
    A.append("    'projection.period.type' = 'date',")
    A.append("    'projection.period.format' = 'yyyy-MM',")
    A.append("    'projection.period.range' = '2020-01,NOW',")
    A.append("    'projection.period.interval' = '1',")
    A.append("    'projection.period.interval.unit' = 'MONTHS',")
    A.append(f"    'storage.location.template' = 's3://my-bucket/warehouse/{t}/period=${{period}}/'")
    A.append(");")
    A.append("")
(HERE / 'trino' / 'tables.sql').write_text("\n".join(T))
(HERE / 'athena' / 'tables.sql').write_text("\n".join(A))
