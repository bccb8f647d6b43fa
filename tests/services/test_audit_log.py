"""The audit log's write policy: an entry the database refuses never fails the action
that was already done; it goes whole to the server log instead."""

from __future__ import annotations

import logging

from services.settings import Settings
from services.store import Store
from services.team.audit import Actor, AuditLog


async def test_a_refused_entry_goes_to_the_server_log_and_raises_nothing(
        settings: Settings, caplog):
    store = Store(settings.mongo_url, settings.db_name)
    await store.close()                 # every write is now refused
    log = AuditLog(store, settings.replace(audit_write_attempts=2))
    with caplog.at_level(logging.ERROR, logger="ferry.audit"):
        await log.record(Actor("dora", "10.0.0.7", "page"), "project.update", "app",
                         project="app", details={"changes": {"description": {"after": "x"}}})
    [record] = [r for r in caplog.records if r.name == "ferry.audit"]
    assert "audit entry not stored" in record.getMessage()
    assert '"actor": "dora"' in record.getMessage() and "project.update" in record.getMessage()
