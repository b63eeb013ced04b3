from __future__ import annotations

import pytest

from shared.errors import BadRequestError
from shared.pagination import Page, decode_cursor, encode_cursor, paginate


def test_pages_cover_every_item_once_in_key_order() -> None:
    items = [f"id-{n:03d}" for n in range(23)][::-1]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = paginate(items, key=str, limit=10, cursor=cursor, page_type=Page)
        seen.extend(page.items)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == sorted(items)
    assert pages == 3


def test_an_exact_last_page_has_no_next_cursor() -> None:
    assert paginate(["a", "b"], key=str, limit=2, cursor=None, page_type=Page).next_cursor is None


def test_cursor_round_trips_and_garbage_is_a_bad_request() -> None:
    assert decode_cursor(encode_cursor("erp-us")) == "erp-us"
    with pytest.raises(BadRequestError):
        decode_cursor("%%%")
    with pytest.raises(BadRequestError):
        decode_cursor("_w")
