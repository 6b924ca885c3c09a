"""Contract tests: connectors against doubles checked by the vendors' API specs."""
