"""Importing an Ansible inventory (INI and YAML) through POST /api/hosts: groups with
children, host and group variables, all or nothing, errors that name the line or host."""

from __future__ import annotations

INI = """\
# the web tier
[web]
web-1 ansible_host=127.0.9.1 ansible_port=2201 tier=front
web-[02:03] ansible_host=127.0.9.2 ansible_user=app

[db]
db-1 ansible_host=127.0.9.10 ansible_python_interpreter=/usr/bin/python3

[prod:children]
web
db

[prod:vars]
region="eu west"
tier=back

[web:vars]
http_port=8080
"""

YAML = """\
all:
  vars:
    owner: ops
  children:
    prod:
      vars:
        region: eu
      children:
        web:
          hosts:
            web-1:
              ansible_host: 127.0.9.1
              ansible_port: 2201
              enabled: true
            web-2:
          vars:
            http_port: 8080
            ports: [80, 443]
    db:
      hosts:
        db-1: {ansible_host: 127.0.9.10, ansible_user: postgres}
"""


async def import_inventory(api, text: str, fmt: str = "auto") -> tuple[int, dict]:
    return await api.post("/api/hosts", {"inventory": text, "format": fmt})


async def hosts_by_name(api) -> dict[str, dict]:
    status, body = await api.get("/api/hosts")
    assert status == 200
    return {host["name"]: host for host in body["hosts"]}


async def test_an_ini_inventory_creates_hosts_with_groups_from_children(api):
    status, body = await import_inventory(api, INI)
    assert status == 201, body
    hosts = await hosts_by_name(api)
    assert sorted(hosts) == ["db-1", "web-02", "web-03", "web-1"]
    assert sorted(hosts["web-1"]["groups"]) == ["prod", "web"]
    assert hosts["db-1"]["groups"] == ["db", "prod"]


async def test_ini_connection_variables_become_address_port_and_user(api):
    await import_inventory(api, INI)
    hosts = await hosts_by_name(api)
    assert (hosts["web-1"]["address"], hosts["web-1"]["port"]) == ("127.0.9.1", 2201)
    assert hosts["web-02"]["user"] == "app"
    assert hosts["web-1"]["user"] == "deploy"


async def test_ini_variables_inherit_from_parent_groups_and_the_nearest_wins(api):
    await import_inventory(api, INI)
    web = (await hosts_by_name(api))["web-1"]["variables"]
    assert web == {"tier": "front", "region": "eu west", "http_port": "8080"}
    assert (await hosts_by_name(api))["db-1"]["variables"] == {"region": "eu west",
                                                               "tier": "back"}


async def test_ansible_variables_ferry_does_not_use_are_reported_as_ignored(api):
    status, body = await import_inventory(api, INI)
    assert status == 201
    assert body["ignored"] == ["ansible_python_interpreter"]


async def test_a_yaml_inventory_creates_hosts_with_groups_and_variables(api):
    status, body = await import_inventory(api, YAML)
    assert status == 201, body
    hosts = await hosts_by_name(api)
    assert sorted(hosts) == ["db-1", "web-1", "web-2"]
    assert sorted(hosts["web-1"]["groups"]) == ["prod", "web"]
    assert hosts["web-1"]["port"] == 2201
    assert hosts["web-1"]["variables"] == {"owner": "ops", "region": "eu", "http_port": "8080",
                                           "ports": "[80,443]", "enabled": "true"}
    assert hosts["web-2"]["address"] == "web-2"
    assert hosts["db-1"]["user"] == "postgres"
    assert hosts["db-1"]["groups"] == ["db"]


async def test_a_bad_ini_line_is_named_by_its_number_and_nothing_is_imported(api):
    text = "[web]\nweb-1 ansible_host=127.0.9.1\n[web\nweb-2 ansible_host=127.0.9.2\n"
    status, body = await import_inventory(api, text, "ini")
    assert status == 400
    assert body["message"].startswith("line 3:")
    assert await hosts_by_name(api) == {}


async def test_a_bad_host_is_named_and_nothing_is_imported(api):
    text = "[web]\nweb-1 ansible_host=127.0.9.1\nweb-2 ansible_host=not!an!address\n"
    status, body = await import_inventory(api, text)
    assert status == 400
    assert "web-2" in body["message"] and "address" in body["message"]
    assert await hosts_by_name(api) == {}


async def test_a_yaml_syntax_error_names_its_line(api):
    status, body = await import_inventory(api, "all:\n  hosts:\n    web-1: [\n", "yaml")
    assert status == 400
    assert body["message"].startswith("line ")


async def test_yaml_aliases_are_refused_so_an_alias_bomb_cannot_expand(api):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n" \
           "c: [*b, *b, *b, *b, *b, *b, *b, *b]\n"
    status, body = await import_inventory(api, bomb, "yaml")
    assert status == 400
    assert "aliases" in body["message"]


async def test_an_unsafe_variable_name_is_refused(api):
    status, body = await import_inventory(api, "[web]\nweb-1 LD_PRELOAD=/tmp/x.so\n")
    assert status == 400
    assert "LD_PRELOAD" in body["message"]


async def test_an_existing_host_name_imports_nothing(api):
    status, _ = await api.post("/api/hosts", {"name": "web-1", "address": "127.0.9.1"})
    assert status == 201
    status, body = await import_inventory(api, INI)
    assert status == 409
    assert "web-1" in body["message"]
    assert sorted(await hosts_by_name(api)) == ["web-1"]


async def test_a_cycle_through_children_is_an_error(api):
    text = "[a:children]\nb\n[b:children]\na\n[b]\nh-1\n"
    status, body = await import_inventory(api, text)
    assert status == 400
    assert "ancestor" in body["message"]


async def test_an_empty_inventory_and_an_unknown_format_are_refused(api):
    assert (await import_inventory(api, "# nothing\n"))[0] == 400
    assert (await import_inventory(api, INI, "toml"))[0] == 400
    status, _ = await api.post("/api/hosts", {"inventory": INI, "name": "x"})
    assert status == 400


async def test_only_an_admin_may_import(base_url, services):
    from tests.conftest import Api

    user = await services.auth.create_user("dora", "deployer-password-1", "deployer")
    token = await services.auth.create_token(user, "cli")
    status, _ = await import_inventory(Api(base_url, token), INI)
    assert status == 403
