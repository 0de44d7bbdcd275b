"""Storage backends behind one interface; see `storage.base` for the contract."""

from .base import (
    Concatenator,
    DataStore,
    DirectSigner,
    DirectStore,
    LocalFile,
    Locker,
    PartReceiver,
    Presigner,
    Pruner,
    StoredPart,
    Upload,
    UploadInfo,
    UploadSpec,
)
from .errors import (
    LengthExceeded,
    OffsetMismatch,
    OverLimit,
    StorageError,
    UploadComplete,
    UploadGone,
    UploadNotFound,
)
from .local import LocalStore

__all__ = [
    "Concatenator",
    "DataStore",
    "DirectSigner",
    "DirectStore",
    "LengthExceeded",
    "LocalFile",
    "LocalStore",
    "Locker",
    "OffsetMismatch",
    "OverLimit",
    "PartReceiver",
    "Presigner",
    "Pruner",
    "StorageError",
    "StoredPart",
    "Upload",
    "UploadComplete",
    "UploadGone",
    "UploadInfo",
    "UploadNotFound",
    "UploadSpec",
]
