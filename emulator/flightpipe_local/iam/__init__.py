"""Who may do what on the local stack, as IAM decides it on AWS.

Every principal of the deployed stack (a Lambda, a Glue job run, the crawler, the state
machine, the EventBridge rule) calls the local endpoint with credentials of its own role,
obtained by assuming that role as the service would; every call is authorized from the
roles' and resources' policies before moto serves it.
"""
