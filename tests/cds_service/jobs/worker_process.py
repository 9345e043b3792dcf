"""A process running the in-process executor on ``argv[1]`` until its stdin closes (for the
cross-process tests). Prints ``ready`` once its threads run."""

from __future__ import annotations

import sys

from cds_service.db.engine import make_engine
from cds_service.db.session import make_sessionmaker
from cds_service.jobs.inprocess import InProcessExecutor
from cds_service.settings import Settings


def main() -> None:
    settings = Settings(
        database_url=sys.argv[1],
        jobs={
            "threads": 2,
            "poll_seconds": 0.05,
            "schedule_poll_seconds": 0.05,
            "extra_modules": tuple(sys.argv[2:]),
        },
    )
    engine = make_engine(settings.database_url, pool_size=4)
    executor = InProcessExecutor(settings, make_sessionmaker(engine))
    executor.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.read()
    executor.stop()
    engine.dispose()


if __name__ == "__main__":
    main()
