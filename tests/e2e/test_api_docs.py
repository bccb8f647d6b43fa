"""The API reference page renders Ferry's OpenAPI document with Swagger UI."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


async def test_the_api_reference_lists_the_operations(page):
    await page.goto("/api/docs")
    await page.wait_for_selector(".opblock-tag-section")
    assert await page.locator(".opblock-tag").count() >= 10
    await page.wait_for_selector(".opblock-summary-path[data-path='/api/releases']")
