"""Operating the pipeline: the ``flightpipe`` commands that act on a deployed stage or on
the stack ``flightpipe local up`` serves (upload, status, show, backfill, report, smoke)."""
