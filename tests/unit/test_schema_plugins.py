"""The kernel's corrections to what Litestar generates: Struct schemas that say what they accept, and OPTIONS."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import get, post
from litestar.params import JSONBody

from shared.service import create_service
from tests.support import in_process

if TYPE_CHECKING:
    from collections.abc import Callable

    from shared.settings import Settings

Code = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2,4}$", max_length=4)]


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    codes: tuple[Code, ...]
    children: tuple[Loose, ...] = ()


class Loose(msgspec.Struct):
    name: str


@get("/v1/things", sync_to_thread=False)
def list_things() -> Strict:
    return Strict(codes=("AB",))


@post("/v1/things", sync_to_thread=False)
def make_thing(data: JSONBody[Strict]) -> Strict:
    return data


def app(make_settings: Callable[..., Settings]) -> Any:
    settings = make_settings(auth={"enabled": False}, rate_limit={"enabled": False})
    return create_service(
        name="t", title="t", description="t", settings=settings, route_handlers=[list_things, make_thing]
    )


async def test_struct_schemas_refuse_unknown_properties_and_keep_item_types(
    make_settings: Callable[..., Settings],
) -> None:
    async with in_process(app(make_settings)) as client:
        spec = (await client.get("/schema/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    strict, loose = schemas["Strict"], schemas["Loose"]
    assert strict["additionalProperties"] is False
    assert "additionalProperties" not in loose  # unknown fields are ignored there, so allowed
    # An array of constrained strings keeps their constraints, and "X or anything" is just X.
    assert strict["properties"]["codes"]["items"] == {
        "type": "string",
        "pattern": "^[A-Z]{2,4}$",
        "maxLength": 4,
    }
    assert strict["properties"]["children"]["items"] == {"$ref": "#/components/schemas/Loose"}


async def test_options_lists_every_method_of_a_path_with_several_handlers(
    make_settings: Callable[..., Settings],
) -> None:
    async with in_process(app(make_settings)) as client:
        answer = await client.options("/v1/things")
        refused = await client.put("/v1/things")
    assert answer.status_code == 204
    assert answer.headers["allow"] == "GET, OPTIONS, POST"
    assert refused.status_code == 405
    assert set(refused.headers["allow"].split(", ")) == {"GET", "OPTIONS", "POST"}
