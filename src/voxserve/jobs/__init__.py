"""Long-form jobs: texts of any length synthesized chunk by chunk in the idle time, into
one file in object storage (docs/jobs.md)."""

from voxserve.jobs.service import ChunkQueue, ChunkTask, Job, JobService, LocalQueue
from voxserve.jobs.text import chunk_sentences, plain_markdown, read_upload

__all__ = [
    "ChunkQueue",
    "ChunkTask",
    "Job",
    "JobService",
    "LocalQueue",
    "chunk_sentences",
    "plain_markdown",
    "read_upload",
]
