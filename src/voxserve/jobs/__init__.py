"""Long-form jobs: texts of any length synthesized chunk by chunk in the idle time, into
one file in object storage (docs/jobs.md)."""

from voxserve.jobs.job import ChunkQueue, ChunkTask, Job, LocalQueue
from voxserve.jobs.outputs import Chapter, ChapterTime, JobOutputs
from voxserve.jobs.service import JobService
from voxserve.jobs.text import chapter_document, chunk_sentences, plain_markdown, read_upload

__all__ = [
    "Chapter",
    "ChapterTime",
    "ChunkQueue",
    "ChunkTask",
    "Job",
    "JobOutputs",
    "JobService",
    "LocalQueue",
    "chapter_document",
    "chunk_sentences",
    "plain_markdown",
    "read_upload",
]
