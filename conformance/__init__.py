"""The MCP conformance suite's fixture, as a Django app: installed only by ``config.settings_conformance``."""
