"""The lock model and its writer: no I/O beyond the text they are given."""
