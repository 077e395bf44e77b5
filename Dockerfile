# syntax=docker/dockerfile:1
# cnn-tagger: the API image (default target) and the trainer image, CPU or GPU.
#
#   docker build -t cnn-tagger:cpu .                                   # API: ONNX Runtime, no TensorFlow
#   docker build -t cnn-tagger-trainer:cpu --target trainer .          # trainer: TensorFlow
#   docker build -t cnn-tagger:gpu --build-arg VARIANT=gpu .           # + tensorflow[and-cuda]
#   docker build -t cnn-tagger-trainer:gpu --build-arg VARIANT=gpu --target trainer .
#   docker run -v cnn-tagger-models:/models cnn-tagger-trainer:cpu     # train, publish quick model
#   docker run -p 8000:8000 -v cnn-tagger-models:/models cnn-tagger:cpu
#
# The CPU API image is the base install (`pip install .`): it serves versions with model.onnx
# through ONNX Runtime and has no TensorFlow, so a version without model.onnx fails to load
# there (serve it with the trainer image or the GPU one). TensorFlow stays the GPU path: the
# GPU API image also carries tensorflow[and-cuda].
#
# The trainer reads Fashion-MNIST from /usr/share/datasets/fashion-mnist, which the Debian
# package dataset-fashion-mnist provides. It is installed below when the base image's apt
# can reach it (WITH_DATASET=1, the default); otherwise the trainer falls back to Keras'
# downloader, which needs network access at training time.

ARG PYTHON_IMAGE=python:3.11-slim

# --- serve-deps: the base install's dependencies (+ gpu) in a virtual environment ---------
FROM ${PYTHON_IMAGE} AS serve-deps
ARG VARIANT=cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src

# Dependencies first (from pyproject.toml alone), so code edits do not reinstall them.
COPY pyproject.toml README.md deploy/docker/requirements.py ./
RUN case "$VARIANT" in cpu) extras="" ;; gpu) extras="gpu" ;; \
        *) echo "VARIANT must be cpu or gpu, not '$VARIANT'" >&2; exit 1 ;; esac \
    && python requirements.py $extras < pyproject.toml > /tmp/requirements.txt \
    && cat /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# --- train-deps: + the train extra (TensorFlow, Keras, tf2onnx ...) -----------------------
FROM serve-deps AS train-deps
RUN python requirements.py train < pyproject.toml > /tmp/requirements-train.txt \
    && pip install -r /tmp/requirements-train.txt

# --- serve-builder: the serving code; the CPU variant must hold no TensorFlow -------------
FROM serve-deps AS serve-builder
ARG VARIANT=cpu
COPY app ./app
COPY model_store ./model_store
RUN pip install --no-deps . \
    && python -c "import app, model_store" \
    && if [ "$VARIANT" = cpu ]; then \
        python -c "import importlib.util as u, sys; sys.exit(u.find_spec('tensorflow') is not None)" \
        || { echo "the CPU API image must not install TensorFlow" >&2; exit 1; }; \
    fi

# --- train-builder: all the code, training included ----------------------------------------
FROM train-deps AS train-builder
COPY app ./app
COPY model_store ./model_store
COPY training ./training
RUN pip install --no-deps . && python -c "import app, model_store, training"

# --- runtime: slim Python, a non-root user, the store volume (both images) -----------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 tagger \
    && useradd --system --uid 10001 --gid tagger --create-home --home-dir /home/tagger tagger \
    && mkdir -p /models \
    && chown tagger:tagger /models

# Settings come from the environment (prefix TAGGER_, see app/config.py); these are the
# container defaults, everything else keeps the app's own default.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    TAGGER_MODEL_STORE=/models
VOLUME ["/models"]

# --- trainer: TensorFlow and the data set; trains and publishes the quick model by default -
FROM runtime AS trainer
ARG VARIANT=cpu
ARG WITH_DATASET=1
LABEL org.opencontainers.image.title="cnn-tagger-trainer" \
      org.opencontainers.image.description="CNN image tagger: trainer ($VARIANT)"
RUN if [ "$WITH_DATASET" = 1 ]; then \
        apt-get update \
        && { apt-get install -y --no-install-recommends dataset-fashion-mnist \
             || echo "note: dataset-fashion-mnist unavailable; the trainer will download Fashion-MNIST"; } \
        && rm -rf /var/lib/apt/lists/*; \
    fi
COPY --from=train-builder /opt/venv /opt/venv
ENV MPLCONFIGDIR=/tmp/matplotlib
USER tagger
WORKDIR /home/tagger
CMD ["python", "-m", "training", "train", "--profile", "quick"]

# --- api (the default target): uvicorn serving the app --------------------------------------
FROM runtime AS api
ARG VARIANT=cpu
LABEL org.opencontainers.image.title="cnn-tagger" \
      org.opencontainers.image.description="CNN image tagger: HTTP API ($VARIANT)"
COPY --from=serve-builder /opt/venv /opt/venv
ENV TAGGER_HOST=0.0.0.0 \
    TAGGER_PORT=8000
USER tagger
WORKDIR /home/tagger
EXPOSE 8000

# Liveness of the process (not readiness: /readyz stays 503 while the model loads).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('TAGGER_PORT', '8000'), timeout=4)"

# python -m app: a supervisor and TAGGER_WORKERS uvicorn workers (default: one per CPU the
# container may use), settings from the environment; SIGTERM drains them all.
CMD ["python", "-m", "app"]
