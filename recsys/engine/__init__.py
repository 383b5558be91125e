"""Aggregation engines: the heavy, event-sized aggregations of training, defined once per engine.

``aggregates`` holds the catalog-sized results and the ``AggregationEngine`` interface;
``inprocess`` computes them with numpy/scipy from an order table in memory (the default, no
JVM); ``spark`` computes them with PySpark from (partitioned) Parquet, so only the
catalog-sized results reach the driver. PySpark is imported only when a Spark engine is built.
"""
