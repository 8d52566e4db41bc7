"""Benchmarks, run by `citeqa bench` (command.py): speed beside baselines and cost at scale.

- `run`: latency, throughput, start-up and ingest of the service against its baselines
- `ingest_cost`: what ingesting one corpus costs (`--ingest-corpus`)
- `scale`: index cost on synthetic corpora (`--scale`)
- `scale_path`: the whole answer path on synthetic corpora (`--scale-path`)
- `load`: servers on loopback and wrk against them; `wrk_ask.lua`, the request script
- `naive_service`: the baseline service a user would otherwise write
- `report`: bench.json, bench.md and the plots
"""
