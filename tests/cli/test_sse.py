"""The client's reading of a text/event-stream body (cli.client.http.sse_events)."""

from __future__ import annotations

from cli.client.http import sse_events


def test_events_split_on_blank_lines_with_their_ids():
    body = [
        ": keep-alive\n",
        "id: ftevent-1\n",
        'data: {"message": "a"}\n',
        "\n",
        "id: ftevent-2\r\n",
        "event: message\r\n",
        'data: {"message":\n',
        'data: "b"}\n',
        "\n",
        "data: [DONE]",
    ]
    events = list(sse_events(iter(body)))
    assert [(e.id, e.event, e.data) for e in events] == [
        ("ftevent-1", None, '{"message": "a"}'),
        ("ftevent-2", "message", '{"message":\n"b"}'),
        (None, None, "[DONE]"),
    ]


def test_lines_without_data_dispatch_nothing():
    assert list(sse_events(iter([": ping\n", "\n", "id: x\n", "\n"]))) == []
