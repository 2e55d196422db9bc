"""Data: load, validate and synthesise provincial monthly panels in the package's data contract."""
