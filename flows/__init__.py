"""Survey flows bundled with cxbot (TOML files in this folder)."""
