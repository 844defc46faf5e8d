"""Local development tooling: the emulated AWS stack and the embedded warehouse.

Never imported by the Lambda handlers or the Glue job.
"""
