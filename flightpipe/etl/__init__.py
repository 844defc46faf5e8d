"""The flights ETL job's library: read, validate, stage and load one uploaded file.

The Glue entry script (``glue_scripts/flight_etl.py``) only parses its arguments
and calls :func:`flightpipe.etl.job.run_job`; everything else lives here, where
it runs the same on Glue (Python 3.9, the ``analytics`` library set's pandas)
and on a laptop.
"""

from __future__ import annotations
