"""OpenAPI schemas of msgspec Structs that say exactly what the Struct accepts.

Litestar's own Struct schema plugin, which this one extends (Litestar asks the
app's plugins before its own), leaves two gaps that clients and contract tests
then take for permission:

- a Struct with ``forbid_unknown_fields`` refuses a payload with an extra key, so
  its schema says ``additionalProperties: false``;
- a ``tuple[X, ...]`` field comes out as an array of "X or anything"
  (``oneOf: [X, {}]``); it is an array of X;
- the items of an array of constrained strings (``tuple[Code, ...]``) lose their
  pattern and lengths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, get_args, get_origin

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.spec import Reference, Schema

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition

__all__ = ("StrictStructSchemaPlugin",)


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Litestar's Struct schemas, with ``additionalProperties: false`` where unknown fields are refused."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        """The component schema of a Struct."""
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if isinstance(info, msgspec.inspect.StructType) and info.forbid_unknown_fields:
            schema.additional_properties = False
        hints = field_definition.get_type_hints(include_extras=True, resolve_generics=True)
        fields = (
            {field.encode_name: field.name for field in info.fields}
            if isinstance(info, msgspec.inspect.StructType)
            else {}
        )
        for name, prop in (schema.properties or {}).items():
            if isinstance(prop, Schema) and isinstance(prop.items, Schema):
                prop.items = _without_anything(prop.items)
                if isinstance(prop.items, Schema) and name in fields:
                    _constrain_items(prop.items, hints.get(fields[name]))
        return schema


def _constrain_items(items: Schema, annotation: Any) -> None:
    """Give string items the pattern and lengths of their ``Annotated`` type, which Litestar drops in arrays."""
    args = get_args(annotation)
    item = args[0] if args else None
    if get_origin(item) is not Annotated:
        return
    for meta in get_args(item)[1:]:
        if isinstance(meta, msgspec.Meta):
            items.pattern = meta.pattern or items.pattern
            items.min_length = meta.min_length if meta.min_length is not None else items.min_length
            items.max_length = meta.max_length if meta.max_length is not None else items.max_length


def _without_anything(items: Schema) -> Schema | Reference:
    """``oneOf: [X, {}]`` (Litestar's ``tuple[X, ...]``) as ``X``; anything else unchanged."""
    choices = items.one_of or []
    if len(choices) == 2:
        typed = [choice for choice in choices if choice != Schema()]
        if len(typed) == 1:
            return typed[0]
    return items
