"""The network: its resolved spec, the symbol per bucket, the checked bucketing module and the native operator."""
