"""Talking to package indexes: HTTP session, credentials, caches, local folders."""
