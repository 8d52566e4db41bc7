"""Domain errors raised by ingest and the service, translated at the edges."""


class CiteqaError(Exception):
    """A problem a user can act on; the CLI prints it as one line, HTTP as a 4xx/5xx."""


class CorpusError(CiteqaError):
    """The corpus folder is missing, empty, or holds a malformed document."""


class MetadataError(CorpusError):
    """A `.meta.json` sidecar is unreadable or wrong: the user's own file, so ingest stops."""


class IndexNotFound(CiteqaError):
    """No index directory (or no manifest) where one was expected."""


class IndexCorrupt(CiteqaError):
    """An index artifact is missing, truncated or does not match its checksum."""


class ModelMismatch(CiteqaError):
    """The embedding model's weights differ from the ones the index was built with."""


class IngestLocked(CiteqaError):
    """Another ingest holds the lock on the same index."""


class ClusterError(CiteqaError):
    """The Ray cluster cannot be reached, lacks what the ingest asks, or failed during it."""


class MissingExtra(CiteqaError):
    """A command needs packages of an optional extra that this install leaves out."""


INGEST_EXTRA = "pip install 'citeqa[ingest]'"
