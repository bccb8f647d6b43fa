"""OpenAPI paths: signing in, users and tokens, hosts, projects, releases."""

from __future__ import annotations

from handlers.openapi.schemas import INT, STR
from handlers.openapi.spec import listing, op, path_param, query, ref

ID, NAME, HOST = path_param("id"), path_param("name"), path_param("host")
LIMIT = query("limit", {"type": "integer", "minimum": 1, "maximum": 500})

TEAM = {
    "/api/session": {"post": op("Sign in: a session token for the API", "team",
                                access="public", body=ref("Credentials"), ok=201,
                                answer=ref("Session"), errors=(400, 403, 429))},
    "/api/me": {"get": op("Who am I, with my project memberships", "team", access="member",
                          answer=ref("Me"))},
    "/api/users": {
        "get": op("Users", "team", access="admin", answer=listing("users", "User")),
        "post": op("Create a user", "team", access="admin", body=ref("UserInput"), ok=201,
                   answer=ref("User"), errors=(400, 401, 403, 409)),
    },
    "/api/users/{user}": {
        "parameters": [path_param("user")],
        "get": op("A user", "team", access="admin", answer=ref("User")),
        "put": op("Change a user's role or password, disable or enable it", "team",
                  access="admin", body=ref("UserChange"), answer=ref("User"),
                  errors=(400, 401, 403, 404, 409)),
    },
    "/api/tokens": {
        "get": op("My API tokens (never their secrets)", "team", access="member",
                  answer=listing("tokens", "Token")),
        "post": op("Create an API token; its secret is in this answer only", "team",
                   access="member", body=ref("TokenInput"), ok=201, answer=ref("Token"),
                   errors=(400, 401, 409)),
    },
    "/api/tokens/{token_id}": {
        "parameters": [path_param("token_id")],
        "delete": op("Revoke one of my tokens", "team", access="member", ok=204),
    },
}

HOSTS = {
    "/api/hosts": {
        "get": op("Hosts", "hosts", params=(query("group", STR),),
                  answer=listing("hosts", "Host")),
        "post": op("Add a host, many hosts, or an Ansible inventory (all or none)", "hosts",
                   access="admin", body=ref("HostsInput"), ok=201, answer=ref("Host"),
                   errors=(400, 401, 403, 409, 413)),
    },
    "/api/hosts/{host}": {
        "parameters": [HOST],
        "get": op("A host", "hosts", answer=ref("Host")),
        "put": op("Change a host", "hosts", access="admin", body=ref("Host"),
                  answer=ref("Host")),
        "delete": op("Delete a host", "hosts", access="admin", ok=204),
    },
    "/api/hosts/{host}/scan": {
        "parameters": [HOST],
        "post": op("The SSH host key the host offers (trusts nothing)", "hosts",
                   access="admin", answer=ref("HostKey"), errors=(400, 401, 403, 404, 409)),
    },
    "/api/hosts/{host}/trust": {
        "parameters": [HOST],
        "post": op("Trust the host's key (must match a fresh scan)", "hosts", access="admin",
                   body={"type": "object", "properties": {"fingerprint": STR},
                         "required": ["fingerprint"]}, answer=ref("Host")),
    },
    "/api/hosts/{host}/releases": {
        "parameters": [HOST],
        "get": op("The releases that ran on a host, newest first", "hosts",
                  params=(LIMIT, query("before", INT)), answer=ref("Releases")),
    },
}

PROJECTS = {
    "/api/projects": {
        "get": op("Projects I may see", "projects", access="member",
                  answer=listing("projects", "Project")),
        "post": op("Create a project", "projects", access="admin", body=ref("Project"),
                   ok=201, answer=ref("Project"), errors=(400, 401, 403, 409)),
    },
    "/api/projects/{name}": {
        "parameters": [NAME],
        "get": op("A project", "projects", answer=ref("Project")),
        "put": op("Change a project (maintainer; some fields admin only)", "projects",
                  access="maintainer", body=ref("Project"), answer=ref("Project")),
        "delete": op("Delete a project", "projects", access="admin", ok=204),
    },
    "/api/projects/{name}/refs": {
        "parameters": [NAME],
        "get": op("Branches and tags from Ferry's mirror", "projects", answer=ref("Refs")),
    },
    "/api/projects/{name}/refresh": {
        "parameters": [NAME],
        "post": op("Fetch the repository now, then its refs", "projects", access="deployer",
                   answer=ref("Refs"), errors=(400, 401, 403, 404, 429)),
    },
    "/api/projects/{name}/commits": {
        "parameters": [NAME],
        "get": op("Commits of a ref (base..ref with a base)", "projects",
                  params=(query("ref", STR), query("base", STR)),
                  answer=listing("commits", "Commit")),
    },
    "/api/projects/{name}/members": {
        "parameters": [NAME],
        "get": op("The project's members and their roles", "projects",
                  answer=listing("members", "Member")),
    },
    "/api/projects/{name}/members/{user}": {
        "parameters": [NAME, path_param("user")],
        "put": op("Give a user a role on the project", "projects", access="maintainer",
                  body={"type": "object", "properties": {"role": STR}, "required": ["role"]},
                  answer=ref("Member")),
        "delete": op("Remove a member", "projects", access="maintainer", ok=204),
    },
}

ACTION = {"post": op("Act on a release", "releases", access="deployer", ok=202,
                     answer={"type": "object"}, errors=(400, 401, 403, 404, 409))}

RELEASES = {
    "/api/releases": {
        "get": op("Releases, newest first", "releases", access="member",
                  params=(query("project", STR), LIMIT), answer=ref("Releases")),
        "post": op("Start a release (or schedule it, or wait for approval)", "releases",
                   access="deployer", body=ref("ReleaseInput"), ok=201, answer=ref("Release"),
                   errors=(400, 401, 403, 404, 409, 503)),
    },
    "/api/releases/waiting": {
        "get": op("Releases scheduled or awaiting my approval", "releases", access="member",
                  answer=ref("Releases")),
    },
    "/api/releases/{id}": {
        "parameters": [ID],
        "get": op("A release with its host runs; ?wait=S answers once it ends or pauses",
                  "releases", params=(query("wait", {"type": "number", "minimum": 0}),),
                  answer=ref("Release")),
    },
    **{f"/api/releases/{{id}}/{verb}": {"parameters": [ID], **ACTION}
       for verb in ("cancel", "promote", "retry", "approve", "reject", "start")},
    "/api/releases/{id}/rollback": {
        "parameters": [ID],
        "get": op("What a rollback would do", "releases", params=(query("to", INT),),
                  answer={"type": "object"}, errors=(400, 401, 403, 404, 409)),
        "post": op("Switch the hosts a release switched back", "releases", access="deployer",
                   body={"type": "object", "properties": {"to": INT}}, ok=201,
                   answer=ref("Release"), errors=(400, 401, 403, 404, 409)),
    },
    "/api/releases/{id}/approval": {
        "parameters": [ID],
        "get": op("Who approved and who is awaited", "releases", answer=ref("Approval")),
    },
    "/api/releases/{id}/hosts/{host}/log": {
        "parameters": [ID, HOST],
        "get": op("A page of one host's log; ?format=text downloads it all", "releases",
                  params=(query("after", INT), LIMIT,
                          query("format", {"type": "string", "enum": ["json", "text"]})),
                  answer=ref("LogPage")),
    },
    "/api/releases/{id}/logs": {
        "parameters": [ID],
        "get": op("Every log of a release as one zip", "releases", media="application/zip",
                  answer={"type": "string", "format": "binary"}),
    },
    "/api/releases/{id}/commits": {
        "parameters": [ID],
        "get": op("The commits a release ships (previous release..this one)", "releases",
                  answer=listing("commits", "Commit")),
    },
}

PATHS = {**TEAM, **HOSTS, **PROJECTS, **RELEASES}
