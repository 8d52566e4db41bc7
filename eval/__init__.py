"""Offline evaluation of the same Retriever the service uses."""
