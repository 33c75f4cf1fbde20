"""The error hierarchy: every message says what happened and what to run next."""


class RagError(Exception):
    """Base class for errors the user can act on.

    Args:
        message: what happened, and what whoever asked can do about it.
        advice: what only the operator of the machine can do (set a RAG_* variable, install a
            package), kept apart so that the app can leave it out of what a caller of its API is
            told; `str()` of the error, which the CLI and the terminal show, holds both.
    """

    def __init__(self, message: str = "", advice: str = ""):
        super().__init__(message)
        self.message = message
        self.advice = advice

    def __str__(self) -> str:
        return f"{self.message}; {self.advice}" if self.advice else self.message


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
