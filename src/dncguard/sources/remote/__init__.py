"""Remote DNC sources: shared resilience (retries, backoff, adaptive concurrency) and the
generic http-batch check."""

from .http_batch import HttpBatchCheck, HttpBatchSettings, load_http_batch
from .resilience import AdaptiveLimiter, Resilient, RetryBudget, RetryPolicy, parse_retry_after

__all__ = [
    "AdaptiveLimiter",
    "HttpBatchCheck",
    "HttpBatchSettings",
    "Resilient",
    "RetryBudget",
    "RetryPolicy",
    "load_http_batch",
    "parse_retry_after",
]
