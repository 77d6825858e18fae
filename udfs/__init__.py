"""udfs package."""
