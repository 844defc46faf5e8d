"""Runs a Glue job's entry script the way Glue does, for the local stack.

Run as ``python glue_launcher.py SCRIPT ARG...``: the script runs as ``__main__`` with
``sys.argv`` = ``[SCRIPT, ARG...]``. Glue reports a failed run's ``ErrorMessage`` from
the exception the script raised, not from what the script logged, so a script may log in
any format (the pipeline's jobs log JSON lines). The launcher catches that exception,
writes its message to the file named by ``FLIGHTPIPE_GLUE_ERROR_FILE`` for the runner
to report, hands it to ``sys.excepthook`` (the script's own, if it installed one; else
Python's traceback) and exits 1. Standard library only: it runs beside the job's
libraries alone.
"""

import os
import runpy
import sys

ERROR_FILE = "FLIGHTPIPE_GLUE_ERROR_FILE"


def main():
    script, arguments = sys.argv[1], sys.argv[2:]
    sys.argv = [script, *arguments]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit:
        raise
    except BaseException as error:  # any error fails the run, as on Glue
        path = os.environ.get(ERROR_FILE)
        if path:
            with open(path, "w", encoding="utf-8") as record:
                record.write(str(error) or type(error).__name__)
        sys.excepthook(type(error), error, error.__traceback__)
        sys.exit(1)


if __name__ == "__main__":
    main()
