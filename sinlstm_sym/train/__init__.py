"""Training: ``fit`` and its session, the training loop and what it keeps (validation, progress records, the
planned learning-rate schedule, per-bucket losses) and MXNet's thread settings."""
