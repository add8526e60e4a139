"""The `lathe` command: the server side (serve, worker, inference, migrate, keys) and the
client commands that talk to a running API (files, jobs, models, chat)."""
