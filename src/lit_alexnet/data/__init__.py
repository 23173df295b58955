"""Data: datamodules, the built-in dataset, the paper's transforms and dataset statistics."""
