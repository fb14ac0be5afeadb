"""The training loop and what it keeps: validation, progress records, the learning-rate schedule, threads."""
