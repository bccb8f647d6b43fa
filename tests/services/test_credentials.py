"""Credentials are remembered for a few seconds, yet every change made through Ferry holds
from the next request on; the open sockets' credentials are checked all together."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from services import Services
from services.store import utcnow
from services.team.auth import AuthService, User
from services.team.credentials import BEARER, Credential, CredentialCache, SocketCredentials
from services.team.throttle import SigninThrottle


async def _token_of(services: Services, name: str, role: str = "deployer") -> str:
    user = await services.auth.create_user(name, f"{name}-password", role)
    return await services.auth.create_token(user, "test")


async def test_a_revoked_token_is_refused_at_once_though_it_was_remembered(services):
    token = await _token_of(services, "carol")
    assert (await services.auth.token_user(token)).name == "carol"
    [doc] = [doc async for doc in services.store.tokens.find({"user": "carol"})]
    await services.auth.tokens.revoke("carol", doc["_id"])
    assert await services.auth.token_user(token) is None


async def test_a_disabled_user_is_refused_at_once_and_enabled_again_at_once(services):
    token = await _token_of(services, "dave")
    assert await services.auth.token_user(token) is not None
    await services.auth.update_user("dave", {"disabled": True})
    assert await services.auth.token_user(token) is None
    await services.auth.update_user("dave", {"disabled": False})
    assert (await services.auth.token_user(token)).name == "dave"


async def test_a_lowered_role_holds_at_once(services):
    await services.auth.create_user("root", "root-password", "admin")
    token = await _token_of(services, "erin", "admin")
    assert (await services.auth.token_user(token)).role == "admin"
    await services.auth.update_user("erin", {"role": "viewer"})
    assert (await services.auth.token_user(token)).role == "viewer"


async def test_an_ended_session_is_refused_at_once(services):
    user = await services.auth.create_user("hank", "hank-password", "viewer")
    session = await services.auth.create_session(user)
    assert (await services.auth.session_user(session)).name == "hank"
    await services.auth.end_session(session)
    assert await services.auth.session_user(session) is None


async def test_a_change_through_another_instance_holds_within_auth_cache_s(services):
    token = await _token_of(services, "frank")
    settings = services.settings.replace(auth_cache_s=0.3)
    other = AuthService(services.store, services.auth_executor, settings,
                        SigninThrottle(settings))
    assert (await other.token_user(token)).name == "frank"
    [doc] = [doc async for doc in services.store.tokens.find({"user": "frank"})]
    await services.auth.tokens.revoke("frank", doc["_id"])      # through this instance
    await asyncio.sleep(0.35)
    assert await other.token_user(token) is None


async def test_auth_cache_s_zero_reads_the_database_every_time(services):
    token = await _token_of(services, "gina")
    settings = services.settings.replace(auth_cache_s=0)
    uncached = AuthService(services.store, services.auth_executor, settings,
                           SigninThrottle(settings))
    assert await uncached.token_user(token) is not None
    await services.store.tokens.delete_many({"user": "gina"})      # not through Ferry
    assert await uncached.token_user(token) is None


async def test_many_credentials_resolve_together_each_to_its_own_user(services):
    tokens = [await _token_of(services, f"user{n}") for n in range(3)]
    session = await services.auth.create_session(
        await services.auth.create_user("ivan", "ivan-password", "viewer"))
    wanted = [Credential.of(BEARER, t) for t in tokens] + [
        Credential.of("session", session), Credential.of(BEARER, "made-up")]
    answers = await services.auth.resolve_many(wanted)
    assert [answers[c].name if answers[c] else None for c in wanted] == [
        "user0", "user1", "user2", "ivan", None]


def test_a_remembered_credential_ends_at_its_own_expiry():
    cache = CredentialCache(ttl_s=60, max_entries=10)
    credential = Credential(BEARER, "digest")
    cache.put(credential, User("ann", "viewer"), utcnow() - timedelta(seconds=1), 0)
    assert cache.get(credential) == (False, None)


def test_remembered_credentials_are_bounded_least_recently_used_first():
    cache = CredentialCache(ttl_s=60, max_entries=2)
    first, second, third = (Credential(BEARER, str(n)) for n in range(3))
    cache.put(first, User("a", "viewer"), None, 0)
    cache.put(second, User("b", "viewer"), None, 0)
    cache.get(first)
    cache.put(third, User("c", "viewer"), None, 0)
    assert cache.get(second) == (False, None)
    assert cache.get(first)[0] and cache.get(third)[0]


def test_an_answer_read_before_a_revocation_is_not_remembered_after_it():
    cache = CredentialCache(ttl_s=60, max_entries=10)
    credential = Credential(BEARER, "digest")
    generation = cache.generation          # a lookup starts...
    cache.forget(credential)               # ...the token is revoked meanwhile...
    cache.put(credential, User("ann", "viewer"), None, generation)   # ...its answer lands
    assert cache.get(credential) == (False, None)


async def test_open_sockets_credentials_are_resolved_in_one_call_per_check():
    calls: list[set[Credential]] = []
    ann, bob = Credential(BEARER, "ann"), Credential(BEARER, "bob")

    async def resolve_many(credentials):
        calls.append(set(credentials))
        return {ann: User("ann", "viewer"), bob: None}

    told: list[tuple[str, str | None]] = []

    def socket(name: str):
        async def on_checked(user):
            told.append((name, user.name if user else None))
        return on_checked

    watch = SocketCredentials(resolve_many, interval_s=3600)
    watch.watch(ann, socket("tab 1"))
    watch.watch(ann, socket("tab 2"))
    unwatch = watch.watch(bob, socket("tab 3"))
    await watch.check_all()
    assert calls == [{ann, bob}]
    assert sorted(told) == [("tab 1", "ann"), ("tab 2", "ann"), ("tab 3", None)]
    unwatch()
    told.clear()
    await watch.check_all()
    assert calls[-1] == {ann} and sorted(told) == [("tab 1", "ann"), ("tab 2", "ann")]
    await watch.close()


async def test_one_failing_socket_check_does_not_stop_the_others(caplog):
    ann = Credential(BEARER, "ann")

    async def resolve_many(credentials):
        return {ann: User("ann", "viewer")}

    told: list[str] = []

    async def broken(user):
        raise RuntimeError("socket gone")

    async def fine(user):
        told.append(user.name)

    watch = SocketCredentials(resolve_many, interval_s=3600)
    watch.watch(ann, broken)
    watch.watch(ann, fine)
    await watch.check_all()
    assert told == ["ann"]
    assert "credential check failed" in caplog.text
    await watch.close()


async def test_an_open_sockets_periodic_check_is_not_a_use_of_its_token(services):
    token = await _token_of(services, "jane")
    await services.store.tokens.update_many({"user": "jane"}, {"$set": {"last_used_at": None}})
    await services.auth.resolve_many([Credential.of(BEARER, token)], touch=False)
    [doc] = [doc async for doc in services.store.tokens.find({"user": "jane"})]
    assert doc["last_used_at"] is None
    services.auth.cache.forget(Credential.of(BEARER, token))
    await services.auth.token_user(token)            # a request: a use
    [doc] = [doc async for doc in services.store.tokens.find({"user": "jane"})]
    assert doc["last_used_at"] is not None
