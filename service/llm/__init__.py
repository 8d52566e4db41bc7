"""The optional LLM reader: a written answer from any OpenAI-compatible server, every sentence of
it checked against the passages it cites (`check`), today's extractive answer when there is no
LLM or it fails (`reader`)."""
