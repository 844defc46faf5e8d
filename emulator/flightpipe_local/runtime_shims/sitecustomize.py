"""Points every AWS SDK client of an emulated runtime at the local stack.

Loaded by Python at start-up in the Lambda and Glue processes the local stack
runs (this directory is last on their ``PYTHONPATH``). botocore reads
``AWS_ENDPOINT_URL`` itself only from 1.31 on; the SDK that Glue's Python 3.9
``analytics`` set preinstalls is older, and a job on it must still reach the
emulator, never AWS. This is the emulator's boundary, not the product's: the
deployed artifacts contain no such file.
"""

import os

_ENDPOINT = os.environ.get("AWS_ENDPOINT_URL")

if _ENDPOINT:
    try:
        import botocore.session as _session
    except ImportError:  # a runtime without the SDK
        _session = None

    if _session is not None:
        _create_client = _session.Session.create_client

        def _create_client_at_endpoint(self, service_name, *args, **kwargs):
            if kwargs.get("endpoint_url") is None and len(args) < 5:
                kwargs["endpoint_url"] = _ENDPOINT
            return _create_client(self, service_name, *args, **kwargs)

        _session.Session.create_client = _create_client_at_endpoint
