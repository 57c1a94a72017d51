"""Development entry point: `make run` (or `python run.py`) serves the portal.

Serves on http://127.0.0.1:${PORT:-8080} with the in-process scheduler running
(unless SCHEDULER_ENABLED=0). Production uses gunicorn (see README).
"""

import os

from app import create_app, jobs

app = create_app()

if __name__ == "__main__":
    jobs.start_scheduler(app)
    app.run(
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8080")),
        debug=False,
        use_reloader=False,
        threaded=True,
    )
