"""cxbot's product layer: flows, dialogue engine, answer parsing, metrics, config and CLI."""
