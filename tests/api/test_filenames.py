"""Files with non-ASCII names download: `Content-Disposition` carries RFC 5987's `filename*`
(UTF-8, percent-encoded) with an ASCII `filename` stand-in. Before, `données-数据.jsonl`
uploaded but every download of it was a 500."""

from __future__ import annotations

import json
from urllib.parse import unquote

import openai
import pytest

ROW = (
    json.dumps(
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    )
    + "\n"
).encode()


@pytest.fixture(scope="module")
def server(embedded_api):
    return embedded_api.as_org("filenames")


@pytest.mark.parametrize("name", ["données-数据.jsonl", "résumé 🙂.jsonl", "train.jsonl"])
def test_any_file_name_downloads(server, name):
    client = openai.OpenAI(base_url=server.url, api_key=server.key, max_retries=0)
    f = client.files.create(file=(name, ROW), purpose="fine-tune")
    assert client.files.retrieve(f.id).filename == name
    assert client.files.content(f.id).content == ROW  # the official client downloads it
    with server.client() as http:
        header = http.get(f"/files/{f.id}/content").headers["content-disposition"]
    header.encode("latin-1")  # a valid header value
    if name.isascii() and '"' not in name:
        assert header == f'attachment; filename="{name}"'
        return
    plain, _, extended = header.partition("; filename*=")
    assert plain.startswith('attachment; filename="') and plain.isascii()
    charset, _, encoded = extended.partition("''")
    assert charset == "UTF-8" and unquote(encoded) == name
