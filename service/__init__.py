"""Serve cited answers over HTTP from one verified index directory."""
