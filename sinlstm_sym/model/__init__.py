"""The network: its resolved spec, the symbol per bucket, the checked bucketing module, its batches and the
series scaling inside the graph."""
