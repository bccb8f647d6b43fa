"""Page languages: English and Simplified Chinese through tornado.locale.

The translations live in templates/locale/<code>.csv (tornado's CSV format) and are loaded
once, at import. The language comes from the `ferry_locale` cookie when the user picked one
with the switch in the page, otherwise from the browser's Accept-Language header.
"""

from __future__ import annotations

from pathlib import Path

import tornado.locale

LOCALE_DIR = Path(__file__).resolve().parent.parent / "templates" / "locale"
LOCALE_COOKIE = "ferry_locale"
LANGUAGES = (("en_US", "English"), ("zh_CN", "中文"))
CODES = frozenset(code for code, _ in LANGUAGES)

tornado.locale.load_translations(str(LOCALE_DIR))

# Strings the page scripts show; the page hands them over translated (see js/i18n.js).
JS_STRINGS = (
    # states and kinds (shown through t(state))
    "pending", "running", "paused", "ok", "failed", "skipped", "cancelled", "rolled_back",
    "interrupted", "succeeded", "deploy", "retry", "rollback",
    # stages (shown through t(stage))
    "before_checkout", "checkout", "after_checkout", "package", "upload", "extract",
    "before_release", "release", "after_release", "verify", "prune",
    # release page
    "Batch {n}/{of}", "{n} host", "{n} hosts", "hosts {from}\u2013{to} of {total}",
    "{done} of {total} hosts done", "ETA {eta}",
    "Paused after batch {n} — promote to continue.",
    "Click a host to see its log, or a local stage for the build log.",
    "Log of {host}", "Build log", "rollback of", "retry of",
    "{n} earlier lines not shown", "Follow ({n} new)", "no matches", "{n} match", "{n} matches",
    "Promote this release to the next batch?", "Cancel this release? Running steps stop.",
    "Roll back {n} host to release #{id} ({ref} · {sha})?",
    "Roll back {n} hosts to release #{id} ({ref} · {sha})?",
    "Retry the hosts that did not succeed?",
    "connecting…", "live", "live (long-polling)", "reconnecting…", "offline",
    "signed out: sign in again", "Loading…", "Nothing yet.", "Duration", "Started",
    # generic
    "Network error: {error}", "sign in first", "Saved.", "Deleted.", "Delete host {name}?",
    "Delete project {name}?", "Never", "none", "all", "{n} selected", "Yes", "No", "Save",
    # hosts page
    "Scan key", "Trust key", "Edit", "Delete", "trusted", "not trusted", "Add a host",
    "Add host", "Line {n}: {error}", "expected: name address[:port] user groups…",
    "Imported {n} hosts.", "Trust these {n} keys", "Trusted {n} keys.",
    # project and new release pages
    "Branches", "Tags", "Recent commits", "No commits.", "Commits between {base} and {ref}",
    "First release of this project: recent commits of {ref}",
    "no hosts selected", "Start release", "Starting…",
    "{done} of {total} host done",
    "Trust this key",
    "Trusted {n} key.",
    "Imported {n} host.",
    "Nothing was imported: {error}",
    "{hosts} in {batches}",
    "{n} batch",
    "{n} batches",
    "Deployed now: {sha} (release {id}, on {ok} of {n} host)",
    "Deployed now: {sha} (release {id}, on {ok} of {n} hosts)",
    "No release of this project is deployed yet.",
    "Recent commits of {ref}",
    "The release history could not be loaded: {error}",
    "Branches and tags could not be loaded: {error}",
    "(type a branch, tag or SHA below)",
    "Hosts could not be loaded: {error}",
    "commit details appear once the release resolves it",
    "P must be a whole number from 1 to {max}.",
    "B must be a number of hosts (1 or more) or a percentage from 1% to 100%.",
    "K must be a number of hosts (1 or more) or a percentage from 1% to 100%.",
    "max_fail must be empty, a number of hosts (0 or more) or a percentage from 1% to 100%.",
    # the wall (static/js/wall/)
    "none", "this link was revoked", "No release is running.", "Recently finished",
    "by {user}", "paused: vote open {go}/{min} go", "paused: promote to continue",
    "{n} more", "page {n} of {of}", "no problems", "no hosts", "ungrouped", "no project",
    "took {duration}", "never deployed",
)


def translations(locale: tornado.locale.Locale) -> dict[str, str]:
    """The page scripts' strings in `locale`, for a data attribute of the page."""
    return {key: locale.translate(key) for key in JS_STRINGS}


def cookie_locale(value: str | None) -> tornado.locale.Locale | None:
    """The locale a `ferry_locale` cookie names, when it names one we have."""
    if value in CODES:
        return tornado.locale.get(value)
    return None
