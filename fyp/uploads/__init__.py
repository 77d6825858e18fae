"""The upload side outside Flink: the upload API and the client that drives it.

- `request`: the body of POST /v1/uploads and its field limits;
- `store`: pending uploads (`PendingUpload`) in memory or on Redis;
- `service`: the API's two operations without HTTP (`UploadService`), and the `UploadCompleted` record;
- `api`: the FastAPI app over the service (`create_app`) and its request-body limit;
- `wiring`: the service and the app wired to this installation's S3, Redis and Kafka (the uvicorn factory);
- `client`: upload a file over HTTP or in-process (`upload_file`, `HttpUploads`, `LocalUploads`);
- `follow`: follow a video to a final status (`wait_for_video`) and ask the index service about it.
- `takedowns`: takedowns and counter-notices (`TakedownService`, `POST /v1/takedowns`, `fyp takedown`).

The CLI (`fyp/commands/uploads.py`) and the benchmarks import these; nothing here imports the CLI.
"""
