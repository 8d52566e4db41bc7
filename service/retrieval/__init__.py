"""The pieces of the search path, each behind a small interface; `service.retriever` composes them.

- `loading`: the verified index and its query encoder
- `candidates`: dense and lexical candidate pools for a question (`Signals`)
- `filtering`: which passages a filter admits, scored exactly when few
- `fusion`: one ranking from the signals, per mode
- `passages`: overlaps and passages with the same text in several documents
- `answers`: the answer sentence of a passage
- `confidence`: whether the corpus answers at all
- `results`: what a search returns (`Hit`, `Answer`, `Source`)
"""
