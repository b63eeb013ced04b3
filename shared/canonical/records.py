"""The bases of the canonical model: one Struct configuration, the fields every record has, and create payloads."""

from __future__ import annotations

from datetime import UTC

import msgspec

from shared.canonical.fields import ExternalRef, MappingVersion, RecordId, SourceId, SourceRef, UtcDateTime

__all__ = ("CanonicalStruct", "CreatePayload", "Record")


class CanonicalStruct(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True, gc=False):
    """Base of every canonical Struct; its configuration holds for the whole model.

    - ``kw_only``: fields are passed by name, so adding a field never reorders a
      call, and fields with defaults may come before fields without.
    - ``forbid_unknown_fields``: a misspelt or foreign field is refused when
      decoding, never silently dropped.
    - ``frozen``: a record is a value. Change one with ``msgspec.structs.replace``.
      Collections are tuples, so the whole value is immutable and hashable.
    - ``gc=False``: as a frozen tree of immutable values cannot form a reference
      cycle, the garbage collector need not track these objects; streaming many
      records then costs less.
    - No ``omit_defaults``: every field is always written, null included, so the
      JSON shape of a type never varies.
    - No ``rename``: Python names are the JSON names (snake_case).

    msgspec passes this configuration down to subclasses, but mypy reads the
    class arguments of each class on its own, so every subclass repeats
    ``kw_only=True, frozen=True``.
    """


class Record(CanonicalStruct, kw_only=True, frozen=True):
    """What every record read from a source carries, whatever its type."""

    id: RecordId
    """finsync's id of the record."""
    source: SourceId
    """The configured source it was read from (``erp-us``)."""
    source_ref: SourceRef
    """Its id inside that source."""
    external_ref: ExternalRef | None = None
    """The business identity it was created with through finsync; null when it was made in the source directly."""
    modified_at: UtcDateTime
    """When the source last changed it (UTC); with ``id``, the cursor of incremental reads."""
    deleted: bool = False
    """True when the source deleted it (or, where the source never deletes, it was reversed or cancelled)."""
    mapping_version: MappingVersion
    """The version of the mapping rules that produced this record."""

    def __post_init__(self) -> None:
        # RFC 3339 allows any offset; the model speaks UTC only, so convert rather than refuse.
        offset = self.modified_at.utcoffset()
        if offset is None:
            raise ValueError("modified_at must be timezone-aware")
        if offset or self.modified_at.tzinfo is not UTC:
            msgspec.structs.force_setattr(self, "modified_at", self.modified_at.astimezone(UTC))


class CreatePayload(CanonicalStruct, kw_only=True, frozen=True):
    """Base of what the API accepts to create an effect in a source: no id, source or timestamps."""

    external_ref: ExternalRef
    """Business identity of the effect, required: the source enforces it as unique per legal entity, so a retry or a race cannot post twice."""
