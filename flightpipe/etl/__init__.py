"""The flights ETL job's library: read, validate, stage and load one uploaded file.

The Glue entry scripts only parse their arguments and call
:func:`flightpipe.etl.job.run_job` with an engine: ``glue_scripts/flight_etl.py``
(Python shell, Python 3.9 with the ``analytics`` library set's pandas) reads the file
in one process; ``glue_scripts/flight_etl_spark.py`` (Glue 5.0, Python 3.11) reads it
in Spark tasks (:mod:`flightpipe.etl.spark_engine`). The rules — layouts, values,
row and file rejections — are :mod:`flightpipe.etl.read` and the modules it uses,
the same code under both engines; everything else lives here too, where it runs the
same on Glue and on a laptop.
"""

from __future__ import annotations
