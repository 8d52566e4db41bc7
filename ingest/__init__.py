"""Turn a corpus of documents into a verified, checksummed index directory."""
