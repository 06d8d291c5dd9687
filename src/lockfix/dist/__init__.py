"""Distributions as indexes publish them: file names, Simple API pages, core metadata,
requirements and wheel tags. Pure data and parsing."""
