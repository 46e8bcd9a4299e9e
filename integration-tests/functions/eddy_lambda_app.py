"""The functions of eddy_app.py as an AWS Lambda handler (API Gateway proxy envelope), for the
Lambda end-to-end tests of integration-tests/tests/sdk_python.rs.

Served through a Lambda Runtime API (e.g. `cargo lambda watch --only-lambda-apis`) by the SDK's
own runtime loop:

    AWS_LAMBDA_RUNTIME_API=127.0.0.1:9000/.rt/<function name> LAMBDA_TASK_ROOT=<this folder> \
        .venv-eddy/bin/python -m eddy.lambda_runtime eddy_lambda_app:handler
"""

from eddy import LambdaHandler

from eddy_app import functions

handler = LambdaHandler(functions)
