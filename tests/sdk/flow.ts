// The user's flow through the TypeScript SDK that @hey-api/openapi-ts generates from a live
// /openapi.json (tests/api/test_sdk.py compiles this with tsc next to ./client and runs it with
// node): upload -> job -> events (page and SSE) -> chat -> download, and a 400 read as the
// error model. It prints one JSON object of what it saw; the test asserts on it.
import { readFileSync } from 'node:fs';

import { createClient, createConfig } from './client/client';
import * as sdk from './client/sdk.gen';
import type { ErrorResponse, FineTuningJob, JobCreate } from './client/types.gen';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const client = createClient(createConfig({ baseUrl: env('LATHE_BASE_URL'), auth: env('LATHE_API_KEY') }));

function ok<T>(result: { data?: T; error?: unknown; response?: Response }, what: string): T {
  if (result.data === undefined) {
    throw new Error(`${what}: ${result.response?.status} ${JSON.stringify(result.error)}`);
  }
  return result.data;
}

async function main(): Promise<void> {
  const trainPath = env('TRAIN_FILE');
  const shared = env('SHARED_JOB');
  const bytes = readFileSync(trainPath);

  const file = ok(
    await sdk.createFile({ client, body: { file: new File([bytes], 'train.jsonl'), purpose: 'fine-tune' } }),
    'upload',
  );
  const content = await ok(
    await sdk.downloadFile({ client, path: { file_id: file.id }, parseAs: 'blob' }),
    'file content',
  ).text();

  const bad: JobCreate = {
    model: 'tiny-llama',
    training_file: file.id,
    method: { type: 'supervised', supervised: { hyperparameters: { lr_scheduler: 'cosinee' as 'cosine' } } },
  };
  const refused = await sdk.createFineTuningJob({ client, body: bad });
  const error: ErrorResponse | undefined = refused.error as ErrorResponse | undefined;

  const created: FineTuningJob = ok(
    await sdk.createFineTuningJob({
      client,
      body: {
        model: 'tiny-llama',
        training_file: file.id,
        metadata: { sdk: 'typescript' },
        adapter: { type: 'lora', r: 4 },
        method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 1 } } },
      },
    }),
    'create job',
  );
  const cancelled = ok(
    await sdk.cancelFineTuningJob({ client, path: { fine_tuning_job_id: created.id } }),
    'cancel',
  );
  const filtered = ok(
    await sdk.listFineTuningJobs({ client, query: { metadata: { sdk: 'typescript' } } }),
    'list by metadata',
  );

  const job = ok(await sdk.retrieveFineTuningJob({ client, path: { fine_tuning_job_id: shared } }), 'job');
  const page = ok(
    await sdk.listFineTuningEvents({ client, path: { fine_tuning_job_id: shared }, query: { limit: 100 } }),
    'events',
  );
  const { stream } = await client.sse.get({
    url: '/v1/fine_tuning/jobs/{fine_tuning_job_id}/events',
    path: { fine_tuning_job_id: shared },
    query: { stream: true },
    security: [{ scheme: 'bearer', type: 'http' }],
    sseMaxRetryAttempts: 1,
  });
  const streamed: unknown[] = [];
  for await (const event of stream) streamed.push(event);

  const chat = ok(
    await sdk.createChatCompletion({
      client,
      body: {
        model: job.fine_tuned_model as string,
        temperature: 0,
        max_tokens: 4,
        messages: [{ role: 'user', content: 'What is the capital of Japan?' }],
      },
    }),
    'chat',
  );
  const zip = Buffer.from(
    await ok(
      await sdk.downloadModel({ client, path: { model: job.fine_tuned_model as string }, parseAs: 'blob' }),
      'download',
    ).arrayBuffer(),
  );

  console.log(
    JSON.stringify({
      file: { id: file.id, status: file.status, bytes: file.bytes, same_content: content === bytes.toString() },
      error: { status: refused.response.status, param: error?.error.param, type: error?.error.type },
      created: { id: created.id, adapter_r: created.adapter.r, method_type: created.method.type },
      cancelled: cancelled.status,
      filtered: filtered.data.map((j) => j.id),
      job: { status: job.status, model: job.fine_tuned_model },
      events: page.data.map((e) => e.type),
      streamed: streamed.map((e) => (typeof e === 'object' && e !== null ? (e as { type: string }).type : e)),
      chat: { object: chat.object, content: chat.choices[0].message.content },
      zip: { bytes: zip.length, magic: zip.subarray(0, 2).toString('latin1') },
    }),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
