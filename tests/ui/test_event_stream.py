"""`GET /v1/fine_tuning/jobs/{id}/events?stream=true` against a real `lathe serve`: the events
oldest first as server-sent events with their ids, `[DONE]` once the job has finished, and a
reconnect with `Last-Event-ID` resumes after that event."""

from __future__ import annotations

import httpx
import pytest

from tests.utils.flows import capitals_jsonl


def frames(response: httpx.Response) -> list[tuple[str | None, str]]:
    """(id, data) of each frame; comment lines (keep-alives) skipped."""
    out, event_id, data = [], None, []
    for line in response.iter_lines():
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif not line and data:
            out.append((event_id, "\n".join(data)))
            event_id, data = None, []
    return out


@pytest.fixture(scope="module")
def finished_job(server, tmp_path_factory) -> str:
    """A job that has a few events and is over (cancelled while it waits or runs)."""
    path = capitals_jsonl(tmp_path_factory.mktemp("stream") / "train.jsonl")
    with server.api() as api:
        file_id = api.post("/files", data={"purpose": "fine-tune"}, files={"file": path.open("rb")})
        job = api.post(
            "/fine_tuning/jobs", json={"model": "tiny-llama", "training_file": file_id.json()["id"]}
        ).json()
        assert api.post(f"/fine_tuning/jobs/{job['id']}/cancel").status_code == 200
    return job["id"]


def stream(server, job_id: str, **headers: str) -> list[tuple[str | None, str]]:
    with (
        server.api() as api,
        api.stream("GET", f"/fine_tuning/jobs/{job_id}/events?stream=true", headers=headers) as r,
    ):
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        return frames(r)


def test_stream_sends_every_event_oldest_first_then_done(server, finished_job):
    import json

    got = stream(server, finished_job)
    assert got[-1] == (None, "[DONE]")
    events = [json.loads(data) for _, data in got[:-1]]
    assert [eid for eid, _ in got[:-1]] == [e["id"] for e in events]
    with server.api() as api:
        listed = api.get(f"/fine_tuning/jobs/{finished_job}/events", params={"limit": 100}).json()
    assert events == list(reversed(listed["data"]))  # the list is newest first
    assert events[0]["message"].startswith("Created fine-tuning job")
    assert events[-1]["message"] == "Fine-tuning job cancelled"


def test_last_event_id_resumes_after_that_event(server, finished_job):
    everything = stream(server, finished_job)
    first_id = everything[0][0]
    assert stream(server, finished_job, **{"Last-Event-ID": first_id}) == everything[1:]
    last_id = everything[-2][0]
    assert stream(server, finished_job, **{"Last-Event-ID": last_id}) == [(None, "[DONE]")]


def test_bad_stream_requests_are_4xx_naming_the_field(server, finished_job):
    url = f"/fine_tuning/jobs/{finished_job}/events"
    with server.api() as api:
        r = api.get(url, params={"stream": "true"}, headers={"Last-Event-ID": "ftevent-nope"})
        assert r.status_code == 404 and r.json()["error"]["param"] == "Last-Event-ID"
        r = api.get(url, params={"stream": "true", "limit": 5})
        assert r.status_code == 400 and r.json()["error"]["param"] == "limit"
        r = api.get(url, params={"stream": "true", "after": "ftevent-x"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "after"
        r = api.get(url, headers={"Last-Event-ID": "ftevent-x"})  # a page has no resume point
        assert r.status_code == 400 and r.json()["error"]["param"] == "Last-Event-ID"
        r = api.get("/fine_tuning/jobs/ftjob-nope/events", params={"stream": "true"})
        assert r.status_code == 404
        r = httpx.get(server.url + "/v1" + url, params={"stream": "true"})
        assert r.status_code == 401
    with server.api(server.other_org_key()) as other:  # another organization's job
        r = other.get(url, params={"stream": "true"})
        assert r.status_code == 404 and r.json()["error"]["param"] == "fine_tuning_job_id"
