"""gunicorn settings for production (`make serve`); override with GUNICORN_* env vars."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8080')}")
workers = int(os.environ.get("GUNICORN_WORKERS", str(max(2, multiprocessing.cpu_count() * 2))))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
errorlog = "-"
preload_app = False


def post_worker_init(worker):
    # Workers run the scheduler only when asked to (SCHEDULER_ENABLED=1); the
    # recommended deployment runs one `flask --app app jobs serve` process instead.
    from app import jobs

    jobs.start_scheduler(worker.app.callable)
