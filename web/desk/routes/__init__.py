"""The desk's routes, one module per group of pages."""
