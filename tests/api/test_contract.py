"""The contract a generated client reads, against a real `lathe serve`: a 400's `param` is the
user's own field path (never pydantic's union members, constraints or literals), with one
message per problem; /openapi.json types the job's spec fields and declares what the server
really sends (SSE, zip, binary uploads, the metadata[...] filter)."""

from __future__ import annotations

import json

import httpx
import pytest

HP = "method.supervised.hyperparameters"


def supervised(**hyperparameters) -> dict:
    return {"method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}}}


@pytest.fixture(scope="module")
def server(embedded_api):
    return embedded_api.as_org("contract")


@pytest.fixture(scope="module")
def spec(server) -> dict:
    return httpx.get(f"{server.base}/openapi.json", timeout=30).json()


BAD_JOBS = [
    (supervised(n_epochs=0), f"{HP}.n_epochs"),
    (supervised(n_epochs="many"), f"{HP}.n_epochs"),
    (supervised(lr_scheduler="cosinee"), f"{HP}.lr_scheduler"),
    (supervised(warmup_ratio=2), f"{HP}.warmup_ratio"),
    (supervised(packing="maybe"), f"{HP}.packing"),
    (supervised(checkpoint_interval="hourly"), f"{HP}.checkpoint_interval"),
    (supervised(early_stopping={"patience": 0}), f"{HP}.early_stopping.patience"),
    (supervised(early_stopping={}), f"{HP}.early_stopping.patience"),
    (supervised(early_stopping=0), f"{HP}.early_stopping"),
    (supervised(evaluation_metrics=["rouge_l", "nope"]), f"{HP}.evaluation_metrics.1"),
    (supervised(bogus=1), f"{HP}.bogus"),
    (
        {"method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": -1}}}},
        "method.dpo.hyperparameters.beta",
    ),
    ({"method": {"type": "sft"}}, "method.type"),
    ({"method": {"type": "ppo"}}, "method"),
    ({"method": {"type": "supervised", "dpo": {}}}, "method"),  # another type's block
    ({"adapter": {"type": "lora", "r": 0}}, "adapter.r"),
    ({"adapter": {"target_modules": 5}}, "adapter.target_modules"),
    ({"adapter": {"type": "lorax"}}, "adapter.type"),
    ({"data": {"validation_split": 3}}, "data.validation_split"),
    ({"hyperparameters": {"n_epochs": "x"}}, "hyperparameters.n_epochs"),
    ({"metadata": {"team": 1}}, "metadata.team"),
    ({"suffix": "a b"}, "suffix"),
    ({"seed": -1}, "seed"),
    ({"training_file": None}, "training_file"),
    ({"resources": {"nodes": 0}}, "resources.nodes"),
    ({"validaton_file": "file-abc"}, "validaton_file"),  # misspelt: refused, not ignored
]


@pytest.mark.parametrize(("fields", "param"), BAD_JOBS, ids=[p for _, p in BAD_JOBS])
def test_a_bad_job_names_the_users_field(server, fields, param):
    body = {"model": "tiny-llama", "training_file": "file-abc", **fields}
    with server.client() as client:
        r = client.post("/fine_tuning/jobs", json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param, error
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_value"
    assert error["message"].startswith(f"Invalid value for '{param}': "), error
    assert error["message"].count("Invalid value for") == 1  # one problem, one message
    for internal in ("constrained-", "literal[", "function-", "more problems", "EarlyStopping'"):
        assert internal not in error["message"], error


def test_a_job_across_hosts_is_refused_where_no_ray_is_configured(server, spec):
    """resources.nodes is typed in /openapi.json; this server has no LATHE_RAY_ADDRESS."""
    fields = spec["components"]["schemas"]["ResourcesSpec"]["properties"]
    assert (
        fields["nodes"]["type"] == "integer"
        and "LATHE_RAY_ADDRESS" in fields["nodes"]["description"]
    )
    assert "gpus_per_node" in fields
    body = {"model": "tiny-llama", "training_file": "file-abc", "resources": {"nodes": 2}}
    with server.client() as client:
        r = client.post("/fine_tuning/jobs", json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "resources.nodes" and "LATHE_RAY_ADDRESS" in error["message"]


def test_a_union_is_one_message_listing_what_it_takes(server):
    with server.client() as client:
        r = client.post(
            "/fine_tuning/jobs",
            json={"model": "tiny-llama", "training_file": "f", **supervised(lr_scheduler="cos")},
        )
    assert r.json()["error"]["message"] == (
        f"Invalid value for '{HP}.lr_scheduler': Input should be 'linear', 'cosine', "
        "'constant' or 'constant_with_warmup', or 'auto'"
    )


def test_every_problem_is_named_once(server):
    body = {
        "model": "tiny-llama",
        "training_file": "f",
        "adapter": {"r": 0},
        **supervised(n_epochs=0, lr_scheduler="x"),
    }
    with server.client() as client:
        error = client.post("/fine_tuning/jobs", json=body).json()["error"]
    assert error["param"] == f"{HP}.n_epochs"
    named = [part.split("'")[1] for part in error["message"].split("; ")]
    assert named == [f"{HP}.n_epochs", f"{HP}.lr_scheduler", "adapter.r"], error


def test_query_parameters_are_named_and_unknown_ones_refused(server):
    with server.client() as client:
        assert client.get("/fine_tuning/jobs", params={"limit": 0}).json()["error"]["param"] == (
            "limit"
        )
        unknown = client.get("/fine_tuning/jobs", params={"team": "a"})
        assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "team"
        assert client.get("/fine_tuning/jobs", params={"metadata[team]": "a"}).status_code == 200


def test_the_job_object_is_typed(spec):
    schemas = spec["components"]["schemas"]
    job = schemas["FineTuningJob"]["properties"]
    assert job["method"] == {"$ref": "#/components/schemas/Method"}
    assert job["adapter"] == {"$ref": "#/components/schemas/AdapterSpec"}
    assert job["data"] == {"$ref": "#/components/schemas/DataOptions"}
    assert job["hyperparameters"] == {"$ref": "#/components/schemas/JobHyperparameters"}
    method = schemas["Method"]
    assert method["discriminator"]["propertyName"] == "type"
    assert method["discriminator"]["mapping"]["dpo"] == "#/components/schemas/MethodDpo"
    dpo = schemas["MethodDpo"]
    assert dpo["required"] == ["type"] and dpo["additionalProperties"] is False
    assert dpo["properties"]["dpo"]["anyOf"][0] == {"$ref": "#/components/schemas/DpoMethod"}
    assert schemas["MethodGrpo"]["required"] == ["type", "grpo"]
    assert set(schemas["JobCreate"]["required"]) == {"model", "training_file"}  # defaults optional


def test_requests_may_leave_defaults_out_and_answers_are_whole(spec):
    """openapi-typescript types a property with a `default` as required: defaults are in words;
    a model only ever sent back is serialized whole, so all its fields are required."""
    schemas = spec["components"]["schemas"]
    assert not [
        (name, field)
        for name, schema in schemas.items()
        for field, prop in schema.get("properties", {}).items()
        if "default" in prop
    ]
    assert "Default: `16`." in schemas["AdapterSpec"]["properties"]["r"]["description"]
    assert "r" not in schemas["AdapterSpec"].get("required", [])
    job = schemas["FineTuningJob"]
    assert set(job["required"]) == set(job["properties"])
    assert set(schemas["FileObject"]["required"]) == set(schemas["FileObject"]["properties"])


def test_what_the_server_sends_is_declared(spec):
    paths = spec["paths"]
    upload = spec["components"]["schemas"]["Body_createFile"]["properties"]["file"]
    assert upload["format"] == "binary"
    events = paths["/v1/fine_tuning/jobs/{fine_tuning_job_id}/events"]["get"]
    assert set(events["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    chat = paths["/v1/chat/completions"]["post"]["responses"]["200"]["content"]
    assert "text/event-stream" in chat
    assert set(paths["/v1/models/{model}/content"]["get"]["responses"]["200"]["content"]) == {
        "application/zip"
    }
    [metadata] = [
        p for p in paths["/v1/fine_tuning/jobs"]["get"]["parameters"] if p["name"] == "metadata"
    ]
    assert metadata["style"] == "deepObject" and metadata["explode"] is True
    # a union's "auto" is an enum of one: openapi-python-client never tries past a const
    assert all(
        "const" not in member
        for schema in spec["components"]["schemas"].values()
        for prop in schema.get("properties", {}).values()
        for member in prop.get("anyOf", [])
    )


def test_a_tagged_unions_tag_is_not_in_the_path():
    """pydantic names the member it tried (`string_check`, `function-after[...]`); the path
    keeps only what the user wrote. No server needed: the same function as the handler's."""
    from typing import Annotated, Literal

    from pydantic import AfterValidator, BaseModel, Field, ValidationError

    from api.errors import problems

    class Check(BaseModel):
        type: Literal["string_check"]
        reference: Annotated[str, AfterValidator(str.strip)]

    class Score(BaseModel):
        type: Literal["score"]
        threshold: float

    class Body(BaseModel):
        graders: list[Annotated[Check | Score, Field(discriminator="type")]]

    body = {"graders": [{"type": "score", "threshold": 0.5}, {"type": "string_check"}]}
    try:
        Body.model_validate(body)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
    assert errors[0]["loc"] == ("body", "graders", 1, "string_check", "reference")
    assert problems(errors, body) == [("graders.1.reference", "Field required")]


def test_a_body_of_many_bad_fields_gets_a_short_answer():
    from api.errors import validation_response

    body = {f"k{i}": 1 for i in range(5000)}
    errors = [{"loc": ("body", k), "msg": "Extra inputs are not permitted"} for k in body]
    error = json.loads(validation_response(errors, body).body)["error"]
    assert error["param"] == "k0" and error["message"].endswith("; and 4990 more fields")
    assert len(error["message"]) < 1000


def test_operations_have_readable_summaries(spec):
    """Swagger UI lists each operation by its summary: words, not "Adminlistkeys"."""
    summaries = {
        op["operationId"]: op["summary"] for item in spec["paths"].values() for op in item.values()
    }
    assert summaries["adminListKeys"] == "Admin list keys"
    assert summaries["createFineTuningJob"] == "Create fine tuning job"
    assert all(" " in s or s.istitle() for s in summaries.values()), summaries
