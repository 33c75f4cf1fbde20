"""The error hierarchy: every message says what happened and what to run next."""


class RagError(Exception):
    """Base class for errors the user can act on."""


class BadQuestion(RagError):
    """The question is empty, too long or otherwise unusable."""


class CorpusError(RagError):
    """The corpus folder is missing, empty or holds unreadable pages."""


class IndexNotBuilt(RagError):
    """No index exists under the vectorstore folder."""


class IndexMismatch(RagError):
    """The index on disk is stale, corrupt or built with another embedder."""


class ModelUnavailable(RagError):
    """A model could not be found locally and cannot be downloaded."""
