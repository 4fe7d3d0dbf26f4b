"""A notebook client for the custom calculation service (its public HTTP API only).

from calc_client import Client
calc = Client("http://localhost:8000")
job = calc.run("result = close[-1] / close[-21] - 1", ["AAPL", "MSFT"])
job.to_frame()
"""

from calc_client.client import Client
from calc_client.errors import (
    CalcError,
    Conflict,
    JobFailed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ScriptNameError,
    ScriptSyntaxError,
    SecurityError,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    ValidationError,
)
from calc_client.job import Evaluation, Job

__all__ = [
    "CalcError",
    "Client",
    "Conflict",
    "Evaluation",
    "Job",
    "JobFailed",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ScriptNameError",
    "ScriptSyntaxError",
    "SecurityError",
    "ServiceUnavailable",
    "Unauthorized",
    "UnsupportedMediaType",
    "ValidationError",
]
