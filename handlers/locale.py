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
    # releases before they start (static/js/release/approval.js, static/js/waiting.js)
    "awaiting_approval", "scheduled", "rejected", "Commit {sha}",
    "Waiting for the freeze “{reason}” to end at {time}",
    "Waiting for the project's deploy lock: {why}", "Scheduled for {time}",
    "{n} of {required} approvals", "Expires {time}", "Rejected by {user}: {comment}",
    "Approved by {user}", "Awaiting: {who}", "Say why in the comment to reject.",
    "Cancel this release? It never starts.",
    # stages (shown through t(stage))
    "before_checkout", "checkout", "after_checkout", "package", "upload", "extract",
    "before_release", "release", "after_release", "verify", "prune",
    # release page
    "Batch {n}/{of}", "{n} host", "{n} hosts", "skipped — artifact cached from release #{n}",
    "skipped — no hook", "skipped — a rollback builds nothing", "hosts {from}\u2013{to} of {total}",
    "{done} of {total} hosts done", "ETA {eta}",
    "Paused after batch {n} — promote to continue.",
    "Paused after batch {n} — the go/no-go vote decides.",
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
    "Hosts at once must be a whole number from 1 to {max}.",
    "Batch size must be a number of hosts (1 or more) or a percentage from 1% to 100%.",
    "Canary hosts must be a number of hosts (1 or more) or a percentage from 1% to 100%.",
    "Failures allowed must be empty, a count (0 or more) or a percentage from 1% to 100%.",
    # the wall (static/js/wall/)
    "none", "this link was revoked", "No release is running.", "Recently finished",
    "by {user}", "paused: vote open {go}/{min} go", "paused: promote to continue",
    "{n} more", "page {n} of {of}", "no problems", "no hosts", "ungrouped", "no project",
    "took {duration}", "never deployed",
    # the big-screen vote page (static/js/vote/)
    "go", "no-go", "{min} go votes needed", "no-go votes do not cancel",
    "on timeout: {action}", "cancel", "promote", "wait", "no deadline", "past the deadline",
    "batch {n} of {of} done", "{ok} ok", "{failed} failed", "{n} host to go",
    "{n} hosts to go",
    "Continue release #{id}?", "Release #{id}", "Chat is not shown on this screen.",
    "No vote on this release yet: one opens when it pauses for a vote.",
    "PASSED", "FAILED", "EXPIRED", "OVERRIDDEN", "CLOSED",
    "the release continues to every host", "the release is cancelled", "the release {state}",
    "timed out: {action}", "{user} promoted the release", "{user} cancelled the release",
    # release chat and vote (static/js/release/chat.js, vote.js)
    "No messages yet.", "Loading older messages…", "Start of the conversation",
    "Slow down: {message}", "Show the chat", "Hide the chat", "{n} unread message",
    "{n} unread messages", "Go/no-go vote", "Go/no-go vote after batch {n}", "Big screen",
    "Comment (optional)", "Go", "No-go", "{n} go vote needed", "{n} go votes needed",
    "one no-go cancels", "the release's author may not vote", "No votes yet.", "No deadline",
    "Time left: {time}", "Deadline passed: {action}", "open", "passed", "expired",
    "cancelling", "promoting", "waiting for votes",
    "{user} promoted the release; the vote was overridden.",
    "{user} cancelled the release; the vote was overridden.",
    "The vote expired: the release continues.", "The vote expired: the release is cancelled.",
    "The vote closed: the release ended ({state}).",
    "Passed ({go} go, {no_go} no-go): the release continues.",
    "Failed ({go} go, {no_go} no-go): the release is cancelled.",
    "You started this release: the others decide.",
    # users and tokens (static/js/users.js, tokens.js)
    "member", "viewer", "deployer", "maintainer", "admin", "Role", "Enable", "Disable",
    "enabled", "disabled", "Disable {name}? Their sessions end and their tokens stop working.",
    "User {name} created.", "Password changed.", "never", "expired {time}", "Revoke",
    "Revoke the token {name}? Scripts using it stop working at once.", "Token revoked.",
    "Copied.", "Select the token and copy it.",
    # history: host page, project chart and rollback, release commits (host.js,
    # project_history.js, release/extras.js)
    "by rollback {id}", "No releases yet.", "Roll back to this",
    "Switch {n} hosts back to release {id} ({ref})?", "other outcomes", "seconds",
    "first release", "rolled back", "and {n} more commit", "and {n} more commits",
    # the audit log page (static/js/audit.js)
    "Older entries", "Newest entries", "No entries match.", "before", "after", "(none)",
    "(removed)", "(not set)",
    # notification channels on the project page (static/js/project_notify.js)
    "No channels yet.", "Send test", "Deliveries", "Test message queued.",
    "Delete the channel {name}?", "sent", "No deliveries yet.", "attempts: {n}",
)


def translations(locale: tornado.locale.Locale) -> dict[str, str]:
    """The page scripts' strings in `locale`, for a data attribute of the page."""
    return {key: locale.translate(key) for key in JS_STRINGS}


def cookie_locale(value: str | None) -> tornado.locale.Locale | None:
    """The locale a `ferry_locale` cookie names, when it names one we have."""
    if value in CODES:
        return tornado.locale.get(value)
    return None
