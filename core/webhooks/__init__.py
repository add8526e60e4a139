"""Webhooks: job events announced to an organization's endpoints, signed per Standard Webhooks.

- `events`: the event types Lathe sends and their payloads (OpenAI's, plus Lathe's own);
- `signing`: `whsec_` secrets and the `webhook-id/-timestamp/-signature` headers;
- `urls`: which endpoint URLs may be called (no SSRF into the server's own networks);
- `endpoints`: an organization's endpoints (the `/v1/webhook_endpoints` API);
- `outbox`: delivery rows written in the transaction that changes the job;
- `delivery`: the loop that sends due deliveries, retrying with exponential backoff.
"""
