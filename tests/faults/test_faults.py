"""Fault injection against the real stack (tests/faults/conftest.py): every routine fault ends
with the job succeeded exactly once, no metrics event repeated or lost, nothing orphaned —
without a human. Recovery times are printed (pytest -s)."""

from __future__ import annotations

import signal
import time

from tests.faults import scenario as sc
from tests.utils.faults import training_processes
from tests.utils.waiting import wait_for


def test_kill_9_of_the_worker_after_a_checkpoint_resumes_on_the_other_worker(fault_stack, tmp_path):
    stack = fault_stack
    stack.ensure_workers(2)
    job_id = sc.submit(stack, tmp_path, n_epochs=12)
    victim = sc.running_on(stack, job_id)
    sc.wait_message(stack, job_id, "Checkpoint saved at step 4")
    sc.wait_step(stack, job_id, 5)
    killed = time.time()
    stack.signal_worker(victim, signal.SIGKILL)
    # the kernel takes the training process down with its worker: nothing trains on unwatched
    wait_for(lambda: not training_processes(job_id), 10, "training process gone with its worker")
    taken = sc.wait_message(stack, job_id, "The job's worker", after=killed)
    resumed = sc.wait_message(stack, job_id, "Resuming from the checkpoint at step 4", after=killed)
    stack.ensure_workers(2)  # replace the dead one for the next scenarios
    done = sc.assert_whole(stack, job_id, total=12)
    assert done.worker != victim and done.attempts == 2
    sc.report(
        "kill -9",
        lease_taken_back=taken - killed,
        training_resumed=resumed - killed,
        succeeded=done.finished_at.timestamp() - killed,
    )


def test_sigterm_hands_the_job_back_at_a_step_boundary(fault_stack, tmp_path):
    stack = fault_stack
    stack.ensure_workers(2)
    job_id = sc.submit(stack, tmp_path, n_epochs=12)
    victim = sc.running_on(stack, job_id)
    sc.wait_step(stack, job_id, 2)
    at = max(sc.steps(stack, job_id))
    stopped = time.time()
    stack.signal_worker(victim, signal.SIGTERM)
    stack.workers[victim].popen.wait(60)  # the worker exits once it has handed the job back
    exited = time.time()
    back = sc.wait_message(stack, job_id, "The worker is shutting down")
    # the run checkpointed the step it stopped at, and the next run goes on from exactly there
    handed = max(
        e.data["step"]
        for e in sc.events(stack, job_id)
        if e.message.startswith("Checkpoint saved") and e.created_at.timestamp() <= back
    )
    assert handed > at
    resumed = sc.wait_message(stack, job_id, f"Resuming from the checkpoint at step {handed}")
    stack.ensure_workers(2)
    done = sc.assert_whole(stack, job_id, total=12)
    assert done.worker != victim
    assert done.attempts == 1  # a hand-back is no failed attempt
    sc.report(
        "SIGTERM",
        worker_exited=exited - stopped,
        handed_back=back - stopped,
        training_resumed=resumed - stopped,
    )


def test_cancel_ends_a_hung_step_and_frees_the_worker(fault_stack, tmp_path):
    stack = fault_stack
    stack.ensure_workers(2)
    hung = sc.submit(stack, tmp_path, n_epochs=12, metadata={"lathe_fault_hang_step": "3"})
    worker = sc.running_on(stack, hung)
    log = stack.workers[worker].log
    sc.wait_step(stack, hung, 2)
    # stuck in step 3, ignoring SIGTERM as a kernel that never returns would
    wait_for(lambda: "fault injection: hanging this step" in log.read_text(errors="replace"), 60,
             "step 3 hangs")  # fmt: skip
    assert sc.steps(stack, hung) == [1, 2] and training_processes(hung)
    tasks_done = log.read_text(errors="replace").count("succeeded in")
    cancelled = time.time()
    assert stack.client().fine_tuning.jobs.cancel(hung).status == "cancelled"
    wait_for(lambda: not training_processes(hung), 15, "hung training process ended")
    ended = time.time()
    # the worker's task returns: it takes the next message (the worker itself lives on)
    wait_for(lambda: log.read_text(errors="replace").count("succeeded in") > tasks_done, 15, "free")
    freed = time.time()
    assert stack.workers[worker].popen.poll() is None
    assert sc.job(stack, hung).status == "cancelled"
    assert sc.steps(stack, hung) == [1, 2]  # nothing ran on after the cancel
    sc.report(
        "cancel of a hung step",
        training_process_ended=ended - cancelled,
        worker_free=freed - cancelled,
    )


def test_postgres_restart_mid_job(fault_stack, tmp_path):
    stack = fault_stack
    stack.ensure_workers(2)
    job_id = sc.submit(stack, tmp_path, n_epochs=12)
    sc.running_on(stack, job_id)
    sc.wait_step(stack, job_id, 3)
    before = max(sc.steps(stack, job_id))
    down = time.time()
    stack.pg.stop()
    time.sleep(3)  # a 3 s outage: longer than the restart the issue saw (1.2 s)
    stack.pg.start()
    up = time.time()
    wait_for(lambda: max(sc.steps(stack, job_id)) > before, 60, "training goes on")
    progressed = time.time()
    done = sc.assert_whole(stack, job_id, total=12)
    assert done.attempts == 1  # the run outlived the outage: nothing was retried
    sc.report("Postgres restart", outage=up - down, progress_after_restart=progressed - up)


def test_storage_outages_during_training_and_the_artifact_upload(fault_stack, tmp_path):
    stack = fault_stack
    stack.ensure_workers(2)
    job_id = sc.submit(stack, tmp_path, n_epochs=10)
    worker = sc.running_on(stack, job_id)
    log = stack.workers[worker].log

    def failed_uploads() -> int:
        return log.read_text(errors="replace").count("storage upload failed")

    sc.wait_step(stack, job_id, 1)  # the next checkpoint (step 4) is due inside the outage
    stack.proxy.down()
    cut = time.time()
    # The outage lasts until the worker has met it (an upload failed), not a fixed time.
    wait_for(lambda: failed_uploads() >= 1, 120, "the checkpoint upload meets the outage")
    stack.proxy.up()
    restored = time.time()
    # the checkpoint the outage met is saved once storage is back (step 4's, or on a CPU fast
    # enough to save that one before the cut, step 8's)
    saved = sc.wait_message(stack, job_id, "Checkpoint saved at step", after=cut)
    sc.wait_step(stack, job_id, 10)  # the last step: the artifact upload comes next
    met = failed_uploads()
    stack.proxy.down()
    wait_for(lambda: failed_uploads() > met, 120, "the artifact upload meets the outage")
    stack.proxy.up()
    second = time.time()
    done = sc.assert_whole(stack, job_id, total=10)
    assert done.attempts == 1  # nothing thrown away: the same run finished
    assert failed_uploads() >= 2  # both outages were met, and outlived
    sc.report(
        "S3 outages",
        checkpoint_after_restore=saved - restored,
        succeeded_after_second_restore=done.finished_at.timestamp() - second,
    )


def test_kill_9_of_every_worker_mid_batch_finishes_each_request_once(fault_stack):
    """A batch survives its workers: the lease of the slice running runs out, the reconciler
    enqueues the batch again, and new workers go on from the last stored slice."""
    import io
    import json

    stack = fault_stack
    stack.ensure_workers(2)
    client = stack.client()
    ask = [{"role": "user", "content": "What is the capital of France?"}]
    lines = [
        {"custom_id": f"k{i}", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "tiny-llama", "messages": ask, "max_tokens": 8, "temperature": 0}}
        for i in range(40)
    ]  # fmt: skip
    data = "".join(json.dumps(x) + "\n" for x in lines).encode()
    upload = client.files.create(file=("b.jsonl", io.BytesIO(data)), purpose="batch")
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )

    def ran() -> int:
        counts = client.batches.retrieve(batch.id).request_counts
        return counts.completed + counts.failed

    wait_for(lambda: ran() >= 4, 120, "a first slice stored")
    killed = time.time()
    for name in list(stack.workers):
        stack.signal_worker(name, signal.SIGKILL)
    for proc in stack.workers.values():
        proc.popen.wait(30)
    assert client.batches.retrieve(batch.id).status == "in_progress"
    stack.ensure_workers(2)
    wait_for(lambda: client.batches.retrieve(batch.id).status == "completed", 240, "completed")
    done = client.batches.retrieve(batch.id)
    assert (done.request_counts.completed, done.request_counts.failed) == (40, 0)
    out = [json.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
    assert [x["custom_id"] for x in out] == [f"k{i}" for i in range(40)]  # each once, in order
    sc.report("batch kill -9", completed=done.completed_at - killed)
