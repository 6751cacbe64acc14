"""LeRobotDataset v3.0 layout: the few names and paths both the writer and the reader use.

meta/info.json                                   features, fps, totals, path templates
meta/stats.json                                  per-feature mean/std/min/max/quantiles
meta/tasks.parquet                               task_index, task
meta/episodes/chunk-000/file-000.parquet         one row per episode
data/chunk-000/file-000.parquet                  one row per frame
videos/<image key>/chunk-000/file-000.mp4        all episodes of a camera, back to back
"""

from __future__ import annotations

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
# H.264 in 4:4:4 at a low CRF: near-lossless colour for 96x96 frames (mean abs error
# ~1/255 per channel, measured by the round-trip test), decodable everywhere.
VIDEO_CODEC, VIDEO_PIX_FMT, VIDEO_CRF = "libx264", "yuv444p", "10"


def data_file(chunk: int = 0, file: int = 0) -> str:
    return DATA_PATH.format(chunk_index=chunk, file_index=file)


def video_file(key: str, chunk: int = 0, file: int = 0) -> str:
    return VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)
