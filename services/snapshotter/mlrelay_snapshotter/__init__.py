"""snapshotter: copy a pipeline's source, at one point in time, to Parquet with a manifest."""
