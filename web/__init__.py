"""The one HTTP server of `cxbot serve`: health checks, webhooks, later the REST API."""
