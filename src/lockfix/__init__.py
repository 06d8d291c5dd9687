"""lockfix: check a uv.lock against the package indexes it was resolved from, and repair it."""

__version__ = "0.1.0"
