# syntax=docker/dockerfile:1
# cnn-tagger: one image for the API (default command) and the trainer.
#
#   docker build -t cnn-tagger:cpu .
#   docker build -t cnn-tagger:gpu --build-arg VARIANT=gpu .      # tensorflow[and-cuda]
#   docker run -p 8000:8000 -v cnn-tagger-models:/models cnn-tagger:cpu
#   docker run -v cnn-tagger-models:/models cnn-tagger:cpu python -m training train --profile quick
#
# The trainer reads Fashion-MNIST from /usr/share/datasets/fashion-mnist, which the Debian
# package dataset-fashion-mnist provides. It is installed below when the base image's apt
# can reach it (WITH_DATASET=1, the default); otherwise the trainer falls back to Keras'
# downloader, which needs network access at training time.

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: the project and its dependencies in a virtual environment -------------------
FROM ${PYTHON_IMAGE} AS builder
ARG VARIANT=cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src

# Dependencies first (from pyproject.toml alone), so code edits do not reinstall TensorFlow.
COPY pyproject.toml README.md ./
RUN case "$VARIANT" in cpu|gpu) ;; \
        *) echo "VARIANT must be cpu or gpu, not '$VARIANT'" >&2; exit 1 ;; esac \
    && python -c "import sys, tomllib; \
p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
gpu = p['optional-dependencies']['gpu'] if sys.argv[1] == 'gpu' else []; \
print('\n'.join(p['dependencies'] + gpu))" "$VARIANT" > /tmp/requirements.txt \
    && cat /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt

COPY app ./app
COPY model_store ./model_store
COPY training ./training
RUN pip install --no-deps . && python -c "import app, model_store, training"

# --- runtime: slim Python, the venv, a non-root user --------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG VARIANT=cpu
ARG WITH_DATASET=1
LABEL org.opencontainers.image.title="cnn-tagger" \
      org.opencontainers.image.description="CNN image tagger: trainer and HTTP API ($VARIANT)"

RUN if [ "$WITH_DATASET" = 1 ]; then \
        apt-get update \
        && { apt-get install -y --no-install-recommends dataset-fashion-mnist \
             || echo "note: dataset-fashion-mnist unavailable; the trainer will download Fashion-MNIST"; } \
        && rm -rf /var/lib/apt/lists/*; \
    fi

RUN groupadd --system --gid 10001 tagger \
    && useradd --system --uid 10001 --gid tagger --create-home --home-dir /home/tagger tagger \
    && mkdir -p /models \
    && chown tagger:tagger /models

COPY --from=builder /opt/venv /opt/venv

# Settings come from the environment (prefix TAGGER_, see app/config.py); these are the
# container defaults, everything else keeps the app's own default.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    MPLCONFIGDIR=/tmp/matplotlib \
    TAGGER_HOST=0.0.0.0 \
    TAGGER_PORT=8000 \
    TAGGER_MODEL_STORE=/models

USER tagger
WORKDIR /home/tagger
VOLUME ["/models"]
EXPOSE 8000

# Liveness of the process (not readiness: /readyz stays 503 while the model loads).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('TAGGER_PORT', '8000'), timeout=4)"

# One process per container: uvicorn serving the app, settings from the environment.
CMD ["python", "-m", "app"]
