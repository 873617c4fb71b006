"""Reasoning strategies, one module per idea; each is found by name through the registry."""
