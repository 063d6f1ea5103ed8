"""Optional one-off tools (dataset conversion) with their own, lazily imported, dependencies."""
