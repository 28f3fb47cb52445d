"""Domain errors. Services map them to gRPC status codes in one place."""

from __future__ import annotations


class CsilinkError(Exception):
    """Base class of every error the project raises on purpose."""


class InvalidInput(CsilinkError, ValueError):
    """Malformed input: wrong shape, NaN, bad bit length, bad scenario field (INVALID_ARGUMENT)."""


class NotFound(CsilinkError, KeyError):
    """Unknown model, family, sample id or split (NOT_FOUND)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class ModelMismatch(CsilinkError):
    """A report made by a model the receiver cannot decode (FAILED_PRECONDITION)."""


class BundleError(CsilinkError):
    """Tampered, incomplete or inconsistent model bundle (FAILED_PRECONDITION / DATA_LOSS)."""


class DatasetError(CsilinkError):
    """Corrupt, truncated or incompatible dataset file."""


class TooLarge(CsilinkError):
    """Message or payload over a configured limit (RESOURCE_EXHAUSTED)."""


class NotReady(CsilinkError):
    """A request needs state the node does not have yet, e.g. no channel estimate or stored CSI
    for an image-link block (FAILED_PRECONDITION: do the step that makes it first)."""
