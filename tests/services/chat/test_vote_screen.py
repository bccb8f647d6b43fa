"""What a big-screen vote page is sent of a release's events: what it shows, never log
lines, stage output, failure reasons, or (without chat) chat text and vote comments."""

from __future__ import annotations

from services.chat.screen import screen_events, screen_topics


def event(seq: int, type_: str, **data) -> dict:
    return {"topic": "release:7", "seq": seq, "type": type_, "ts": 1.0, "data": data}


RELEASE_EVENTS = [
    event(1, "release", state="running", counts={"ok": 0}, reason="internal error: boom"),
    event(2, "batch", batch=1, of=2, hosts=1),
    event(3, "stage", host="web-1", stage="upload", state="running"),
    event(4, "log", host="web-1", stage="before_release", line="DB_PASSWORD=hunter2", n=1),
    event(5, "host", host="web-1", state="failed", reason="exit 3: DB_PASSWORD=hunter2",
          stage="before_release"),
    event(6, "vote", state="open", user="ann", choice="go", comment="looks fine", go=1,
          no_go=0, batch=1, rules={"min_go": 2}, deadline=None),
]


def test_a_screen_is_sent_no_log_stage_or_failure_reason():
    sent = screen_events("release:7", RELEASE_EVENTS, chat=True)
    assert [e["seq"] for e in sent] == [1, 2, 5, 6]
    assert "hunter2" not in repr(sent) and "boom" not in repr(sent)
    assert sent[2]["data"] == {"host": "web-1", "state": "failed"}


def test_a_screen_without_chat_is_sent_no_vote_comment_and_no_room():
    sent = screen_events("release:7", RELEASE_EVENTS, chat=False)
    assert "comment" not in sent[-1]["data"] and sent[-1]["data"]["user"] == "ann"
    assert screen_events("chat:release-7", [event(1, "message", text="hi")], chat=False) == []
    assert screen_topics(7, chat=False) == ("release:7",)
    assert screen_topics(7, chat=True) == ("release:7", "chat:release-7")


def test_a_screen_with_chat_keeps_the_vote_comment():
    assert screen_events("release:7", RELEASE_EVENTS, chat=True)[-1]["data"]["comment"] == (
        "looks fine")
